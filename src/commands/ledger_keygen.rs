//! `platform ledger keygen`: a fresh Ed25519 key pair for signing heads.json, with where each half goes.
use super::Ctx;
use crate::cli::LedgerKeygenArgs;
use crate::error::{Error, Result};
use crate::heads;
use crate::output::Report;

pub fn run(_ctx: &Ctx, _args: &LedgerKeygenArgs) -> Result<Report> {
    let key = heads::generate().map_err(Error::failure)?;
    let text = format!(
        "key_id:      {id}\npublic_key:  {public}\nprivate_key: {private}\n\n\
         1. Store private_key as the secret PLATFORM_LEDGER_SIGNING_KEY (GitHub: a secret of the\n   \
         Environments that push state); never commit it.\n\
         2. Add the public half to config/ledger.yml:\n\n\
         signing_keys:\n  - key_id: {id}\n    public_key: {public}\n",
        id = key.key_id,
        public = key.public_key,
        private = key.private_key,
    );
    let json = serde_json::to_value(&key)
        .map_err(|e| Error::failure(format!("cannot encode the key: {e}")))?;
    Ok(Report::new(text, json))
}
