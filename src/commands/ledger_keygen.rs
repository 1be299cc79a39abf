//! `platform ledger keygen`: a fresh Ed25519 key pair for signing heads.json (`crate::heads::generate`), with where each half goes.
use super::Ctx;
use crate::cli::LedgerKeygenArgs;
use crate::error::{Error, Result};
use crate::heads::{self, GeneratedKey};
use crate::output::{Report, View};

pub fn run(_ctx: &Ctx, _args: &LedgerKeygenArgs) -> Result<Report> {
    let key = heads::generate().map_err(Error::failure)?;
    Ok(Report::of(&key))
}

impl View for GeneratedKey {
    fn text(&self) -> String {
        format!(
            "key_id:      {id}\npublic_key:  {public}\nprivate_key: {private}\n\n\
             1. Store private_key as the secret PLATFORM_LEDGER_SIGNING_KEY (GitHub: a secret of the\n   \
             Environments that push state); never commit it.\n\
             2. Add the public half to config/ledger.yml:\n\n\
             signing_keys:\n  - key_id: \"{id}\"\n    public_key: {public}\n",
            id = self.key_id,
            public = self.public_key,
            private = self.private_key,
        )
    }
}
