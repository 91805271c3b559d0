"""``python -m services.adapter_takecare``"""

import asyncio
import sys

from services.adapter_takecare.service import main

sys.exit(asyncio.run(main()))
