//! A variable of the environment read as text: unset or blank is none, and one that is not UTF-8 is an input error naming it, never taken for unset.
use crate::error::{Error, Result};

/// `$name`, or None when unset or blank. `std::env::var`'s `NotUnicode`
/// is not absence: a `PLATFORM_NOW` with a stray byte silently became the system clock.
pub fn read(name: &str, help: &str) -> Result<Option<String>> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(raw)) => {
            Err(Error::input(format!("{name} is not valid UTF-8: {raw:?}")).help(help))
        }
    }
}
