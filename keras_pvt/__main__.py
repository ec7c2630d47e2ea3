import sys

from keras_pvt.cli import main

sys.exit(main())
