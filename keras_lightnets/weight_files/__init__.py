"""Weight files, below the registry: read, verify, convert, download and cache them, given the
variant they are for.

The build scaffold loads ``weights=`` through this package, so nothing here imports the registry
or the model families (an import of the registry while the families are being imported would be a
circle): a caller that has a variant passes it (its layouts, its published sources).
:mod:`keras_lightnets.weights` is the by-name layer on top (a model's card names its variant,
the registry gives its layouts) and re-exports this package's public names, and its modules
(``keras_lightnets.weights.torch_port``, ``...weights.download``, ...) stay importable.

Modules: :mod:`.errors` (what is wrong with a file), :mod:`.torch_pickle` (PyTorch pickles without
torch), :mod:`.hdf5_reader` / :mod:`.hdf5_child` (HDF5 parsed in a child process),
:mod:`.checkpoint_reader` (``.safetensors`` and PyTorch files to arrays), :mod:`.layouts` (a
variant's key layouts and which one a checkpoint is in), :mod:`.torch_port` (state dict to model
by key map), :mod:`.keras_h5` (keras.applications files in graph order), :mod:`.keras_weights`
(our own Keras files, sanitized), :mod:`.convert` (any of those files into a model),
:mod:`.cache` / :mod:`.download` (published files, verified on every use), :mod:`.published`
(the ``weights=`` argument and a variant's published sources).
"""
