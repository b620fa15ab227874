//! The Avro event codec (Confluent wire format through the schema registry).
