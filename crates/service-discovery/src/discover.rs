//! tower [`Discover`](tower::discover::Discover): a watched service as the stream of
//! `Insert`/`Remove` changes that `tower::balance` consumes.

use std::collections::VecDeque;
use std::convert::Infallible;

use futures_util::Stream;
use tower::discover::Change as TowerChange;

use crate::instance::ServiceInstance;
use crate::watch::{Change, Watch};

impl Watch {
    /// The service's Up instances as a tower `Discover` stream keyed by instance id: first an
    /// `Insert` for each current Up instance, then `Insert` when an instance joins or comes
    /// (back) Up, `Remove` when it leaves or stops being Up (Draining, Down). `make_service`
    /// builds the tower service for an instance (e.g. an HTTP client bound to its address).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> nilecare_service_discovery::Result<()> {
    /// use nilecare_service_discovery::{MemoryRegistry, Registry, ServiceInstance};
    /// use tower::{Service, ServiceExt, balance::p2c::Balance, load::Constant, service_fn};
    ///
    /// let registry = MemoryRegistry::default();
    /// let _a = registry.register(ServiceInstance::new("patients", "a", "http://10.0.0.1:80")?).await?;
    /// let discover = registry.watch("patients").await?.into_discover(|instance| {
    ///     let address = instance.address().to_owned();
    ///     Constant::new(service_fn(move |path: &'static str| {
    ///         let url = format!("{address}{path}");
    ///         async move { Ok::<_, std::convert::Infallible>(url) }
    ///     }), 0)
    /// });
    /// let mut balance = Balance::new(discover);
    /// let url = balance.ready().await.expect("an instance").call("/health").await.expect("reply");
    /// assert_eq!(url, "http://10.0.0.1:80/health");
    /// # Ok(()) }
    /// ```
    pub fn into_discover<S, F>(
        self,
        make_service: F,
    ) -> impl Stream<Item = Result<TowerChange<String, S>, Infallible>> + Send + Unpin
    where
        F: FnMut(&ServiceInstance) -> S + Send + 'static,
        S: Send + 'static,
    {
        let initial: VecDeque<ServiceInstance> = self
            .current()
            .iter()
            .filter(|i| i.is_up())
            .cloned()
            .collect();
        Box::pin(futures_util::stream::unfold(
            (self, make_service, initial),
            |(mut watch, mut make, mut initial)| async move {
                if let Some(instance) = initial.pop_front() {
                    let change = TowerChange::Insert(instance.id().to_owned(), make(&instance));
                    return Some((Ok(change), (watch, make, initial)));
                }
                loop {
                    let change = match watch.next().await? {
                        Change::Added(i) | Change::Updated(i) if i.is_up() => {
                            TowerChange::Insert(i.id().to_owned(), make(&i))
                        }
                        Change::Added(_) => continue,
                        Change::Updated(i) | Change::Removed(i) => {
                            TowerChange::Remove(i.id().to_owned())
                        }
                    };
                    return Some((Ok(change), (watch, make, initial)));
                }
            },
        ))
    }
}
