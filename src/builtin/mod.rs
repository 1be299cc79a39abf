//! Built-in modules (SPEC §2): packaging and delivery as library functions the orchestrator calls in-process (`orchestrator::builtins`); no CLI, no ledger.
pub mod deliver_email;
pub mod deliver_local;
pub mod package;
pub mod receipt;

pub use deliver_email::{deliver_email, SmtpSettings, SmtpTls, EMAIL_MAX_PACKAGE_BYTES};
pub use deliver_local::deliver_local;
pub use package::{build_package, ManifestEntry, PackSource, PackageSummary};
pub use receipt::{Receipt, StepFailure};
