"""Which zone a face is in: its box centre inside the zone's polygon (staff zones win ties)."""

from __future__ import annotations

import cv2
import numpy as np

from .site import CameraConfig, ZoneConfig


class ZoneMap:
    def __init__(self, camera: CameraConfig):
        # staff first: a face standing in a staff zone and a patron zone at once is treated as staff
        self.zones = sorted(camera.zones, key=lambda z: not z.staff)
        self._polys = [np.asarray(z.polygon, np.float32).reshape(-1, 1, 2) for z in self.zones]

    def zone_at(self, x: float, y: float) -> ZoneConfig | None:
        for zone, poly in zip(self.zones, self._polys):
            if cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0:
                return zone
        return None

    def zone_of_box(self, box) -> ZoneConfig | None:
        x1, y1, x2, y2 = (float(v) for v in box)
        return self.zone_at((x1 + x2) / 2, (y1 + y2) / 2)

    def outside(self, width: int, height: int) -> list[str]:
        """Zones lying wholly outside a ``width`` x ``height`` frame: they can never hold a face."""
        return [
            z.name
            for z, poly in zip(self.zones, self._polys)
            if poly[..., 0].min() >= width
            or poly[..., 0].max() <= 0
            or poly[..., 1].min() >= height
            or poly[..., 1].max() <= 0
        ]

    @property
    def staff_zones(self) -> list[ZoneConfig]:
        return [z for z in self.zones if z.staff]
