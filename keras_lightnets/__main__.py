import sys

from keras_lightnets.cli import main

sys.exit(main())
