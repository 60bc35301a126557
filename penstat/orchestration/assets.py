"""The Airflow assets that wire the DAGs together (data-aware scheduling).

    penstat.inbox.<feed>   a delivery was announced: the `_READY` doorbell
                           (AssetWatcher with penstat.orchestration.doorbell's trigger,
                           which only a regular file rings) or an asset event posted
                           to the REST API
    penstat.raw.<feed>     new rows reached the raw layer of the warehouse
    penstat.marts          dbt built the marts in the warehouse
    penstat.published      a new publication is current (emitted by the gate alone)
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetWatcher

from penstat.contract.feeds import DOORBELL, FEEDS
from penstat.contract.layout import Paths
from penstat.orchestration.doorbell import DoorbellTrigger

WAREHOUSE_POOL = "penstat_warehouse"
# how often the triggerer looks for `_READY` (one directory scan per inbox): a ring
# waits half of it on average before its DAG run is asked for
DOORBELL_POKE_SECONDS = 0.5


def inbox_asset(feed: str, paths: Paths | None = None) -> Asset:
    paths = paths or Paths.from_env()
    folder = paths.feed_inbox(feed)
    return Asset(
        name=f"penstat.inbox.{feed}",
        uri=f"file://{folder}",
        group="penstat-inbox",
        watchers=[AssetWatcher(
            name=f"penstat_{feed}_doorbell",
            trigger=DoorbellTrigger(directory=str(folder), filename=DOORBELL,
                                    poke_interval=DOORBELL_POKE_SECONDS),
        )],
    )


def raw_asset(feed: str) -> Asset:
    return Asset(name=f"penstat.raw.{feed}", uri=f"penstat://warehouse/raw/{feed}",
                 group="penstat-warehouse")


MARTS_BUILT = Asset(name="penstat.marts", uri="penstat://warehouse/marts",
                    group="penstat-warehouse")
PUBLISHED_MARTS = Asset(name="penstat.published", uri="penstat://published/current",
                        group="penstat-published")
RAW_ASSETS = {feed: raw_asset(feed) for feed in FEEDS}
