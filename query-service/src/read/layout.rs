//! The Redis layout the projection writes, as this service reads it: the shared description in
//! [`holdfast_platform::read_model`].

pub use holdfast_platform::read_model::{
    CachedDefinition, CachedSlot, DEFINITION_FIELD, Update, UpdatedSlot, availability_key, channel,
    channel_prefix, generation_key, generation_prefix, parse_definition, parse_slot, positions_key,
};
