"""The notifier with every channel on (ops webhook, ops e-mail, fallback notices to the unit)."""

from services.router.alerting.notifications import Channels, Notifier
from services.router.alerting.unit_directory import GOTLAND_PATH, UnitDirectory

HOOK = "https://ops.example.se/hooks/carebridge"


ALL_ON = Channels(
    webhook_url=HOOK,
    ops_emails=("drift@example.se", "jour@example.se"),
    email=True,
    fallback_notices=True,
)


UNIT_MAIL = "hemsjukvard.mottagning@example.se"


def notifier(channels=ALL_ON):
    return Notifier(channels=channels, directory=UnitDirectory.load(GOTLAND_PATH))
