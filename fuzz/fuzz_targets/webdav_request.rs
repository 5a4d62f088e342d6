//! Whole WebDAV requests built from fuzz input (method, path, headers, XML body) go through
//! the real service over a real store: every answer is a status, never a panic, and no
//! answer is a server error caused by the input alone.
//!
//! Input layout: the first line is the method, the second the request target, then header
//! lines until an empty line, then the body.

#![no_main]

use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use ruche_dav::{DavService, Principal};
use ruche_store::{Store, StoreConfig};

struct Fixture {
    runtime: tokio::runtime::Runtime,
    service: DavService,
    who: Principal,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(StoreConfig {
            data_dir: dir.path().to_owned(),
            default_quota: Some(1 << 20),
        })
        .expect("store");
        let user = store.create_user("fuzz", "hash", false).expect("user");
        let store = Arc::new(store);
        Fixture {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .build()
                .expect("runtime"),
            service: DavService::new(store, "/dav"),
            who: Principal {
                user: user.id,
                name: user.name,
                space: user.space,
            },
            _dir: dir,
        }
    })
}

fn request(data: &[u8]) -> Option<http::Request<Full<bytes::Bytes>>> {
    let text = std::str::from_utf8(data).ok()?;
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let method = http::Method::from_bytes(lines.next()?.as_bytes()).ok()?;
    let target = format!("/dav/{}", lines.next()?.trim_start_matches('/'));
    let mut builder = http::Request::builder().method(method).uri(target).header("host", "fuzz");
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(name.trim(), value.trim());
    }
    builder.body(Full::new(bytes::Bytes::from(body.to_owned()))).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(req) = request(data) else { return };
    let fixture = fixture();
    let response = fixture.runtime.block_on(fixture.service.handle(req, &fixture.who));
    assert!(response.status().as_u16() >= 100);
});
