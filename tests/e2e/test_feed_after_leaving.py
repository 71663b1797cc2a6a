"""A library that has just left a borrower learns nothing more of them from the live stream,
even when its server reads the changes made before and after it left in one batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from feed_harness import Watch, read_feed
from nlr.registry.v1 import borrower_pb2, registry_service_pb2_grpc
from nlr.registry.v1 import registry_service_pb2 as pb
from nlr_server.ops.dev_pki import DevPkiPaths
from register_harness import (
    BERGEN,
    OSLO,
    TROMSO,
    Registry,
    Servers,
    ServerThread,
    client_channel,
    create,
    get,
    national_id,
    new_borrower,
)

CARD = "N000003101"


@pytest.fixture
def connect(pki: DevPkiPaths) -> Iterator[Callable[[ServerThread, str], Registry]]:
    """A library's client of a server started by the test."""
    channels: list[grpc.Channel] = []

    def registry_of(server: ServerThread, library: str) -> Registry:
        channel = client_channel(server.target, pki)
        channels.append(channel)
        stub = registry_service_pb2_grpc.BorrowerRegistryStub(channel)
        return Registry(stub, None).as_library(library)

    yield registry_of
    for channel in channels:
        channel.close()


def update_email(registry: Registry, card: str, email: str) -> None:
    current = get(registry, card_number=card)
    registry.stub.UpdateBorrower(
        pb.UpdateBorrowerRequest(
            borrower=borrower_pb2.Borrower(card_number=card, etag=current.etag, email=email),
            update_mask=FieldMask(paths=["email"]),
        ),
        metadata=registry.metadata,
    )


def test_a_library_that_left_gets_only_the_tombstone_of_changes_read_in_one_batch(
    servers: Servers, connect: Callable[[ServerThread, str], Registry]
) -> None:
    writer = servers.start(feed_poll_seconds=0.05)
    # The watcher's server never polls on its own: its hub reads the feed only when a commit
    # through this server wakes it, so everything written meanwhile arrives in one batch.
    follower = servers.start(feed_poll_seconds=3600.0)
    oslo, bergen = connect(writer, OSLO), connect(writer, BERGEN)
    nid = national_id()
    create(oslo, new_borrower(CARD, national_id=nid, email="for@example.org"))
    bergen.stub.AffiliateBorrower(
        pb.AffiliateBorrowerRequest(card_number=CARD, national_id=nid), metadata=bergen.metadata
    )
    watch = Watch(connect(follower, BERGEN))
    try:
        replayed = watch.changes(1)
        # Changed while Bergen was affiliated, then Bergen leaves, then changed again: Bergen's
        # UPDATED entry now points at a view Bergen may no longer see.
        update_email(oslo, CARD, "mens@example.org")
        bergen.stub.RemoveAffiliation(
            pb.RemoveAffiliationRequest(card_number=CARD), metadata=bergen.metadata
        )
        update_email(oslo, CARD, "etter@example.org")
        create(connect(follower, TROMSO), new_borrower("N000003102"))  # wakes the hub
        live = watch.changes(1)
        after = watch.quiet(0.3)
    finally:
        watch.cancel()

    assert [(c.kind, c.borrower.card_number) for c in replayed] == [
        (pb.CHANGE_KIND_AFFILIATED, CARD)
    ]
    listed, _ = read_feed(bergen, replayed[0].sequence)
    assert [c.WhichOneof("subject") for c in listed] == ["tombstone"]
    # The stream gets what ListChanges gives: the tombstone, never the full view of after.
    assert not any(change.HasField("borrower") for change in live + after)
    assert live == listed
    assert live[0].kind == pb.CHANGE_KIND_AFFILIATION_REMOVED
    assert live[0].tombstone == pb.Tombstone(card_number=CARD)
    assert after == []
