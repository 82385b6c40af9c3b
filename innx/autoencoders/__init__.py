"""Built-in autoencoders ``E, D`` (the ``innx.autoencoders`` entry points shipped with innx).

- :mod:`innx.autoencoders.conv`: a convolutional autoencoder with a Gaussian posterior for 32, 64
  and 128 px images; ``innx fit autoencoder`` trains it.
- :mod:`innx.autoencoders.loader`: the ``Autoencoder`` protocol every plugin meets, and the loader
  of a trained autoencoder from its run directory through the ``innx.autoencoders`` entry points.
"""

from innx.autoencoders.conv import AutoencoderConfig, ConvAutoencoder

__all__ = ["AutoencoderConfig", "ConvAutoencoder"]
