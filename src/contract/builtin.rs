//! The built-in modules by name (`runner: {builtin: ...}`) and the shape their code fixes —
//! kind, inputs, outputs — which a built-in's module.yml must declare. Their code is in builtin/.
use super::{InputType, Kind, OutputType};
use serde::{Deserialize, Serialize};

/// A module the binary runs in-process. The one list of built-ins: the module schema,
/// validation and the runner all read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Builtin {
    PackageStd,
    DeliverLocal,
    DeliverEmail,
    DeliverGithubRelease,
}

/// What a built-in reads and writes, fixed by its code.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub kind: Kind,
    pub inputs: &'static [(&'static str, InputType)],
    pub outputs: &'static [(&'static str, OutputType)],
}

/// The one input every delivery reads.
const PACKAGE_ZIP: (&str, InputType) = ("package_zip", InputType::File);

impl Builtin {
    pub const ALL: [Builtin; 4] = [
        Builtin::PackageStd,
        Builtin::DeliverLocal,
        Builtin::DeliverEmail,
        Builtin::DeliverGithubRelease,
    ];

    /// Its name in module.yml (its serde name), and its module's id.
    pub fn name(self) -> &'static str {
        match self {
            Builtin::PackageStd => "package_std",
            Builtin::DeliverLocal => "deliver_local",
            Builtin::DeliverEmail => "deliver_email",
            Builtin::DeliverGithubRelease => "deliver_github_release",
        }
    }

    pub fn from_name(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.name() == name)
    }

    pub fn shape(self) -> Shape {
        let delivery = |inputs| Shape {
            kind: Kind::Delivery,
            inputs,
            outputs: &[],
        };
        match self {
            Builtin::PackageStd => Shape {
                kind: Kind::Packaging,
                inputs: &[("bound_outputs", InputType::Array)],
                outputs: &[
                    ("package_zip", OutputType::File),
                    ("manifest_json", OutputType::File),
                    ("manifest_csv", OutputType::File),
                ],
            },
            Builtin::DeliverLocal | Builtin::DeliverGithubRelease => delivery(&[PACKAGE_ZIP]),
            Builtin::DeliverEmail => {
                delivery(&[PACKAGE_ZIP, ("recipient_email", InputType::String)])
            }
        }
    }
}

impl std::fmt::Display for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        crate::testing::assert_wire_names(Builtin::ALL, |b| b.name(), Builtin::from_name);
        assert!(serde_json::from_str::<Builtin>("\"deliver_ftp\"").is_err());
    }
}
