"""Deployment export: ONNX graphs (prefill, block step, tokenizer decoder), TensorRT engines where
TensorRT and a GPU exist, and the manifest that run_engine reads. Entry point: export/to_trt.py."""
