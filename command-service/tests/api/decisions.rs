//! Decisions through the partition processors, without HTTP: commands in through Kafka,
//! outcomes back through the replies topic, events checked in the log itself.

use holdfast_command_service::envelope::Verdict;
use holdfast_domain::{
    Capacity, Command, CustomerId, HoldTtl, Quantity, ReservationId, ResourceId, ResourceName, SlotRange,
};
use holdfast_platform::testing;
use holdfast_platform::topics::TopicLayout;
use uuid::Uuid;

use crate::support::{self, RemoteClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_are_decided_against_capacity_and_answered_through_replies() {
    testing::init_logs();
    let topics = testing::topics("cmd-decide", 4);
    let service = support::start(support::config(&topics)).await;
    let client = RemoteClient::new(&topics);
    let room = ResourceId::parse("room-7").expect("id");

    let defined = client
        .decide(Command::DefineResource {
            resource_id: room.clone(),
            name: ResourceName::parse("Room 7").expect("name"),
            capacity: Capacity::new(3).expect("capacity"),
        })
        .await;
    assert!(matches!(defined.verdict, Verdict::Accepted { events: 1, .. }), "{defined:?}");

    let hold = |quantity: u32| Command::PlaceHold {
        reservation_id: ReservationId::new(&room, Uuid::now_v7()),
        range: SlotRange::parse("2026-12-24", "2026-12-26").expect("range"),
        quantity: Quantity::new(quantity).expect("quantity"),
        customer_id: CustomerId::parse("c-1").expect("customer"),
        ttl: HoldTtl::DEFAULT,
    };
    let first = client.decide(hold(2)).await;
    let second = client.decide(hold(2)).await;
    assert!(matches!(first.verdict, Verdict::Accepted { events: 1, .. }), "{first:?}");
    match &second.verdict {
        Verdict::Rejected { rejection } => assert_eq!(rejection.code(), "insufficient-capacity"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(first.position.next_offset >= 2, "two events precede: {:?}", first.position);

    drop(client);
    service.stop().await.expect("clean stop");
    TopicLayout::from_args(&topics).delete(&testing::kafka()).await.expect("topics deleted");
}
