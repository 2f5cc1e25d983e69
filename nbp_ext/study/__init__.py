"""The reproduction study (``python -m nbp_ext.study``): next-block against next-token prediction at
equal training compute on the embedded synthetic set, from the project's own stages, generation loop
and judge; it writes ``reproduction.md`` with tables, figures and computed findings.

In Python: ``nbp_ext.study.study.run_study(nbp_ext.study.config.study_config(quick=True), command)``.
Nothing is imported here, so that the command can set the threads' wait policy before torch loads.
"""
