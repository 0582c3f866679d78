//! The run-time choice of revocation store, so that [`Revocations`](crate::Revocations) and the
//! types holding it carry no backend generic.

use crate::error::Result;
use crate::memory::MemoryRevocationStore;
#[cfg(feature = "redis")]
use crate::redis::RedisRevocationStore;
use crate::store::{Revocation, RevocationStore};

/// A memory or Redis revocation store, chosen at run time.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyRevocationStore {
    /// In this process.
    Memory(MemoryRevocationStore),
    /// Shared through Redis.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    Redis(RedisRevocationStore),
}

impl From<MemoryRevocationStore> for AnyRevocationStore {
    fn from(store: MemoryRevocationStore) -> Self {
        AnyRevocationStore::Memory(store)
    }
}

#[cfg(feature = "redis")]
impl From<RedisRevocationStore> for AnyRevocationStore {
    fn from(store: RedisRevocationStore) -> Self {
        AnyRevocationStore::Redis(store)
    }
}

impl RevocationStore for AnyRevocationStore {
    async fn append(&self, revocation: &Revocation) -> Result<()> {
        match self {
            AnyRevocationStore::Memory(s) => s.append(revocation).await,
            #[cfg(feature = "redis")]
            AnyRevocationStore::Redis(s) => s.append(revocation).await,
        }
    }

    async fn read_after(&self, cursor: Option<&str>) -> Result<(Vec<Revocation>, Option<String>)> {
        match self {
            AnyRevocationStore::Memory(s) => s.read_after(cursor).await,
            #[cfg(feature = "redis")]
            AnyRevocationStore::Redis(s) => s.read_after(cursor).await,
        }
    }

    fn is_shared(&self) -> bool {
        match self {
            AnyRevocationStore::Memory(s) => s.is_shared(),
            #[cfg(feature = "redis")]
            AnyRevocationStore::Redis(s) => s.is_shared(),
        }
    }
}
