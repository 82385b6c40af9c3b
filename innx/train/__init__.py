"""What every resumable, distributed fit needs, knowing no model: the training loop and its
``Task`` protocol (:mod:`.loop`), the run directory's lifecycle (:mod:`.run_dir`), checkpoints,
the share of work of each process (:mod:`.distributed`), the CUDA-graph step, batches of images and
of store rows (:mod:`.images`, :mod:`.batches`)."""
