"""The 177 real query/reply pairs of ``data/protocol_catalog.json``, as typed test data.

Shared by the codec tests and (later) the simulator's conformance test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

from agent.protocols.gbt20999.message import Address

CATALOG_PATH: Final = Path(__file__).parent / "data" / "protocol_catalog.json"

#: Items whose labelled address is not the one their frames carry. The frames
#: are what the device saw and answered, so they win:
#: - ``2.5.0.0`` (信号机ID) was captured with the query for 2.4.0.0 (timezone);
#:   its ``sample_send`` is identical to the 2.4.0.0 item's.
#: - ``6.3.3.1`` (stage elapsed time) was captured for row 5, not row 1.
LABEL_ERRATA: Final = {
    "2.5.0.0": Address(2, 4, 0, 0),
    "6.3.3.1": Address(6, 3, 3, 5),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class CatalogItem:
    """One captured pair."""

    #: The item's label, e.g. ``9.2.3.1``.
    code: str
    #: The Chinese name the capture tool gave it.
    name: str
    #: The address the item is labelled with.
    labelled: Address
    #: The query the central sent, exactly.
    send: bytes
    #: The controller's reply, exactly.
    response: bytes

    @property
    def address(self) -> Address:
        """The address the frames carry (the label, except for :data:`LABEL_ERRATA`)."""
        return LABEL_ERRATA.get(self.code, self.labelled)


@cache
def load_catalog() -> tuple[CatalogItem, ...]:
    """Every item of the catalog, in file order."""
    document = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return tuple(
        CatalogItem(
            code=item["code"],
            name=item["name"],
            labelled=Address(
                item["class_id"], item["object_id"], item["attr_id"], item["element_id"]
            ),
            send=bytes.fromhex(item["sample_send"]),
            response=bytes.fromhex(item["sample_response"]),
        )
        for item in document["items"]
    )
