# The console's formats (see baitiao/formats/__init__.py): the same as English, one definition.
from baitiao.formats.en.formats import *  # noqa: F403
