import sys

from mail.cli import main

sys.exit(main())
