//! Who this broker is to clients, and fresh random ids.
//!
//! Layer: foundation (see the crate docs); imports nothing of the crate.
//! Why a module of its own: the controller (topic ids, the one-broker
//! check of a manual replica assignment), the group state machine (member
//! ids) and the handlers (Metadata, FindCoordinator, DescribeCluster) all
//! need these, and none of them may import another for it.

/// The only broker: ringlog is one node, whatever its shard count.
pub const NODE_ID: i32 = 0;
/// The cluster id clients see.
pub const CLUSTER_ID: &str = "ringlog";

/// A random (version 4) UUID: topic ids, member ids.
pub fn random_uuid() -> [u8; 16] {
    let mut id = [0u8; 16];
    // SAFETY: getrandom writes at most `id.len()` bytes into `id`.
    let filled = unsafe { libc::getrandom(id.as_mut_ptr().cast(), id.len(), 0) };
    assert_eq!(filled, id.len() as isize, "getrandom filled the UUID");
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id
}
