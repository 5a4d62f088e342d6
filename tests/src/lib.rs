//! Harness for the end-to-end tests: it starts the real `ruche` binary on a free
//! port with a temporary data folder, and gives the tests what they share
//! (authenticated WebDAV requests, multistatus parsing, external client tools).
//!
//! The harness knows nothing of the server's internals: it talks to the binary only
//! through its command line, the one line it prints on stdout, and HTTP. It never
//! skips a test: a missing tool or binary is a failure that says how to fix it.

#![warn(missing_docs)]

mod coeditor;
mod http_date;
mod multistatus;
mod server;
mod tools;

pub use coeditor::{access_token, login, CoEditError, CoEditor};
pub use http_date::http_date;
pub use multistatus::{multistatus, PropResponse, DAV_NS, MS_NS, OC_NS};
pub use server::{describe, encode_path, ruche_bin, TestServer};
pub use tools::{require_root, require_tool, run_tool, IsolatedHome};
