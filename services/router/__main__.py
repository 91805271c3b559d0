"""``python -m services.router``"""

import asyncio
import sys

from services.router.service import main

sys.exit(asyncio.run(main()))
