"""``python -m services.adapter_treserva``"""

import asyncio
import sys

from services.adapter_treserva.service import main

sys.exit(asyncio.run(main()))
