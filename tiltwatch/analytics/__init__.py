"""Casino analytics: site config and zones, visits, valence/arousal, attention, alerts, reports."""

from .records import Alert, Observation, Visit, ZoneCount
from .site import SiteConfig, load_site

__all__ = ["Alert", "Observation", "Visit", "ZoneCount", "SiteConfig", "load_site"]
