"""Where a local model's weights come from, beside an archive uploaded through the admin's file field.

- ``server_path``: a folder already on the worker, inside a directory that STYLEGAP_CHECKPOINT_DIRS lists;
- ``hub``: a Hugging Face Hub repo at a pinned revision, downloaded by the worker (allow-listed files only);
- ``resumable``: a multi-GB archive uploaded from the browser in chunks over the tus protocol.

Whatever the source, the same checks of ``inference_workers.checkpoints`` run on the files before anything
loads them.
"""
