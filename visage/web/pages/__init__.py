"""The console's screens, one module per screen, each an ``APIRouter`` named ``router``."""
