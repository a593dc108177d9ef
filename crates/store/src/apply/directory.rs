//! Meta group: domains, accounts, aliases and DKIM keys.

use super::Applied;
use crate::codec::decode;
use crate::command::{Rejection, Response};
use crate::schema::{self, CF_STATE, table};
use crate::tx::Tx;
use tern_core::records::{AccountRecord, AliasRecord, DkimKeyRecord, DomainRecord};
use tern_core::{AccountId, GroupId};

fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

pub(super) fn add_domain(tx: &mut Tx<'_>, g: GroupId, name: &str, now: i64) -> Applied {
    let key = schema::domain(g, name);
    if tx.exists(&key)? {
        return Err(Rejection::DomainExists.into());
    }
    tx.put(
        key,
        &DomainRecord {
            name: name.to_string(),
            created: now,
        },
    );
    Ok(Response::Ok)
}

pub(super) fn delete_domain(tx: &mut Tx<'_>, g: GroupId, name: &str) -> Applied {
    let key = schema::domain(g, name);
    if !tx.exists(&key)? {
        return Err(Rejection::NoSuchDomain.into());
    }
    let suffix = format!("@{name}");
    for t in [table::ACCOUNT, table::ALIAS] {
        let prefix = schema::Key::new(g, t).build();
        let in_use = tx
            .db()
            .scan(CF_STATE, &prefix)?
            .iter()
            .any(|(k, _)| k[prefix.len()..].ends_with(suffix.as_bytes()));
        if in_use {
            return Err(Rejection::DomainNotEmpty.into());
        }
    }
    tx.delete(key);
    // The signing key goes with its domain: a domain added again later gets a new one.
    tx.delete(schema::dkim_key(g, name));
    Ok(Response::Ok)
}

/// Stores a domain's DKIM key, replacing an older one.
pub(super) fn set_dkim_key(tx: &mut Tx<'_>, g: GroupId, key: DkimKeyRecord) -> Applied {
    if !tx.exists(&schema::domain(g, &key.domain))? {
        return Err(Rejection::NoSuchDomain.into());
    }
    tx.put(schema::dkim_key(g, &key.domain), &key);
    Ok(Response::Ok)
}

pub(super) fn add_account(
    tx: &mut Tx<'_>,
    g: GroupId,
    address: &str,
    password_hash: &str,
    quota: u64,
    now: i64,
) -> Applied {
    if !tx.exists(&schema::domain(g, domain_of(address)))? {
        return Err(Rejection::NoSuchDomain.into());
    }
    if tx.exists(&schema::account(g, address))? || tx.exists(&schema::alias(g, address))? {
        return Err(Rejection::AccountExists.into());
    }
    let next: u64 = tx.get(&schema::next_account(g))?.unwrap_or(1);
    let id = AccountId(next);
    tx.put(schema::next_account(g), &(next + 1));
    tx.put(schema::account_id(g, id), &address.to_string());
    tx.put(
        schema::account(g, address),
        &AccountRecord {
            id,
            address: address.to_string(),
            password_hash: password_hash.to_string(),
            quota,
            created: now,
        },
    );
    Ok(Response::AccountAdded(id))
}

pub(super) fn delete_account(tx: &mut Tx<'_>, g: GroupId, address: &str) -> Applied {
    let key = schema::account(g, address);
    let Some(account) = tx.get::<AccountRecord>(&key)? else {
        return Err(Rejection::NoSuchAccount.into());
    };
    tx.delete(key);
    tx.delete(schema::account_id(g, account.id));
    Ok(Response::Ok)
}

pub(super) fn update_account(
    tx: &mut Tx<'_>,
    g: GroupId,
    address: &str,
    change: impl FnOnce(&mut AccountRecord),
) -> Applied {
    let key = schema::account(g, address);
    let Some(mut account) = tx.get::<AccountRecord>(&key)? else {
        return Err(Rejection::NoSuchAccount.into());
    };
    change(&mut account);
    tx.put(key, &account);
    Ok(Response::Ok)
}

pub(super) fn add_alias(tx: &mut Tx<'_>, g: GroupId, address: &str, target: &str) -> Applied {
    if !tx.exists(&schema::domain(g, domain_of(address)))? {
        return Err(Rejection::NoSuchDomain.into());
    }
    if tx.exists(&schema::account(g, address))? {
        return Err(Rejection::AccountExists.into());
    }
    let key = schema::alias(g, address);
    let mut alias = tx.get::<AliasRecord>(&key)?.unwrap_or(AliasRecord {
        address: address.to_string(),
        targets: Vec::new(),
    });
    if !alias.targets.iter().any(|t| t == target) {
        alias.targets.push(target.to_string());
    }
    tx.put(key, &alias);
    Ok(Response::Ok)
}

pub(super) fn delete_alias(tx: &mut Tx<'_>, g: GroupId, address: &str) -> Applied {
    let key = schema::alias(g, address);
    if !tx.exists(&key)? {
        return Err(Rejection::NoSuchAlias.into());
    }
    tx.delete(key);
    Ok(Response::Ok)
}

/// Decodes every record in a meta table (used by the reader too).
pub(crate) fn decode_all<T: serde::de::DeserializeOwned>(
    rows: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<Vec<T>, crate::StoreError> {
    rows.iter().map(|(k, v)| decode(k, v)).collect()
}
