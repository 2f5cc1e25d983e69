"""Video data: the embedded synthetic set, folder loaders (UCF-101, Kinetics lists), token files."""

from .bad_files import BadFileTracker, TooManyBadFilesError, collate_clips
from .builder import DATASETS, DataConfig, add_data_arguments, build_dataset, build_loader, data_config_from_args
from .folder import VideoFileDataset, list_files, ucf101_files
from .loader import LoaderOptions, LoaderStalled, add_loader_arguments
from .training_order import ResumableSampler
from .synthetic import CLASS_NAMES, SyntheticConfig, SyntheticVideoDataset
from .token_file import TokenDataset, TokenFileWriter
from .video_reader import ClipSpec, VideoError, read_clip
from .video_writer import to_uint8_frames, viewing_scale, write_video

__all__ = [
    "BadFileTracker", "TooManyBadFilesError", "collate_clips", "DATASETS", "DataConfig", "add_data_arguments",
    "build_dataset", "build_loader", "data_config_from_args", "VideoFileDataset", "list_files", "ucf101_files",
    "LoaderOptions", "LoaderStalled", "add_loader_arguments",
    "ResumableSampler", "CLASS_NAMES", "SyntheticConfig", "SyntheticVideoDataset", "TokenDataset", "TokenFileWriter", "ClipSpec",
    "VideoError", "read_clip", "to_uint8_frames", "viewing_scale", "write_video",
]
