//! A consumer of Holdfast's events in a group of its own that keeps a count of confirmed
//! nights per resource and prints it whenever it changes, committing as it goes (a restart
//! resumes where it stopped, with the reader rule's state).
//!
//! ```text
//! cargo run -p holdfast-consumer --example confirmed_nights -- --group my-team.nights
//! ```
//!
//! Restarted, it resumes after its last commit; its counts start from zero again, so a real
//! consumer keeps them where it keeps its offsets (or reads from the start, as a new group).

#![allow(clippy::print_stdout, reason = "the example's output is its count")]

mod fold;

use clap::Parser;
use holdfast_consumer::{EventConsumer, Settings, Valid};
use holdfast_platform::{KafkaArgs, RegistryArgs};

/// Counts confirmed nights per resource from the events topic.
#[derive(Debug, Parser)]
struct Args {
    /// Kafka connection.
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Schema registry.
    #[command(flatten)]
    registry: RegistryArgs,
    /// The events topic.
    #[arg(long, default_value = "reservations.events")]
    topic: String,
    /// This consumer's group.
    #[arg(long, default_value = "confirmed-nights")]
    group: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings {
        kafka: args.kafka,
        registry: args.registry,
        topic: args.topic,
        group_id: args.group.clone(),
        client_id: args.group,
    };
    let consumer = EventConsumer::new(&settings)?;
    let mut nights = fold::ConfirmedNights::default();
    loop {
        let delivered = consumer.next().await?;
        if let Valid::Event(event) = &delivered.record {
            let resource = event.envelope.resource_id.as_str();
            let before = nights.by_resource.get(resource).copied();
            nights.apply(event);
            let after = nights.by_resource.get(resource).copied();
            if before != after {
                println!("{resource}\t{}", after.unwrap_or(0));
            }
        }
        consumer.commit(&delivered)?;
    }
}
