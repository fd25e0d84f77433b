//! Plain reads of the service provider for `scimsync check`: what it declares
//! (`/ServiceProviderConfig`, `/Schemas`, `/ResourceTypes`) and what its list endpoints answer,
//! each as it came, for `check` to judge. They change nothing on the target.

use super::request::Answer;
use super::{TargetClient, TargetError};
use reqwest::Method;
use serde_json::Value;

impl TargetClient {
    /// `GET /{endpoint}?{query}`, retried like every request: the answer's JSON body, `None`
    /// when it has none. A 404 is [`TargetError::NotFound`]; any other refusal
    /// [`TargetError::Rejected`] with its status (a 501 from a server that does not serve
    /// `/Schemas`, say); a 401/403 [`TargetError::Auth`].
    pub async fn probe(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<Option<Value>, TargetError> {
        let url = self.inner.url(&[endpoint]);
        self.inner
            .retrying("probe", || async {
                self.inner.send_once(Method::GET, &url, query, None, Answer::Needed).await.map(|(_, doc)| doc)
            })
            .await
    }
}
