//! The `ruche user` commands. They open the store directly, which is safe while a server
//! runs on the same data folder: SQLite serialises the writes.

use std::path::Path;

use anyhow::Context;
use ruche_store::{Store, StoreConfig};

fn open(data: &Path) -> anyhow::Result<Store> {
    Store::open(StoreConfig {
        data_dir: data.to_owned(),
        default_quota: None,
    })
    .with_context(|| format!("{}: cannot open the data folder", data.display()))
}

pub fn add(data: &Path, name: &str, admin: bool, password: &str) -> anyhow::Result<()> {
    let store = open(data)?;
    let hash = ruche_auth::hash_password(password)?;
    store.create_user(name, &hash, admin)?;
    eprintln!("created user {name}");
    Ok(())
}

pub fn list(data: &Path) -> anyhow::Result<()> {
    let store = open(data)?;
    for user in store.users()? {
        let space = store.space(user.space)?;
        let role = if user.is_admin { "admin" } else { "user" };
        let quota = space
            .quota
            .map_or("no quota".to_owned(), |q| format!("quota {q} bytes"));
        println!("{}\t{role}\t{} bytes used\t{quota}", user.name, space.used);
    }
    Ok(())
}

pub fn passwd(data: &Path, name: &str, password: &str) -> anyhow::Result<()> {
    let store = open(data)?;
    let hash = ruche_auth::hash_password(password)?;
    store.set_password_hash(name, &hash)?;
    eprintln!("changed the password of {name}; their sessions have ended");
    Ok(())
}

pub fn app_password(data: &Path, name: &str, label: &str) -> anyhow::Result<String> {
    let store = open(data)?;
    let user = store
        .user_by_name(name)?
        .with_context(|| format!("user {name}: not found"))?;
    let secret = ruche_auth::new_app_password();
    store.add_app_password(user.id, label, &ruche_auth::secret_digest(&secret))?;
    Ok(secret)
}

pub fn quota(data: &Path, name: &str, bytes: Option<u64>) -> anyhow::Result<()> {
    let store = open(data)?;
    let user = store
        .user_by_name(name)?
        .with_context(|| format!("user {name}: not found"))?;
    store.set_quota(user.space, bytes)?;
    Ok(())
}
