//! Secrets (webhook secrets, API keys) as a type that never prints itself.

use std::fmt;

/// A secret string. `Debug` and `Display` print `(redacted)`; the only way to
/// the text is [`Secret::expose`], which call sites use to sign or authenticate.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// The secrets this value holds: split at every [`LIST_SEPARATOR`],
    /// nothing trimmed, as clap's `value_delimiter` splits `--secret` and
    /// `STRIPE_WEBHOOK_SECRET` for `verify`, `serve` and `sign`. For a value
    /// that reached the program whole (`replay --forward-to`'s secret).
    pub fn split_list(&self) -> Vec<Secret> {
        self.0.split(LIST_SEPARATOR).map(Secret::new).collect()
    }
}

/// What separates several webhook secrets in one value, as during a
/// rotation: `STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old`.
pub const LIST_SEPARATOR: char = ',';

/// The index of the first blank secret, if any: a usage error wherever
/// secrets are given (an empty `--secret`, or `whsec_a,` in the env var).
pub fn first_blank(secrets: &[Secret]) -> Option<usize> {
    secrets.iter().position(Secret::is_blank)
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(redacted)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_formats_the_value() {
        let s = Secret::new("whsec_topsecret");
        assert_eq!(format!("{s}"), "(redacted)");
        assert_eq!(format!("{s:?}"), "(redacted)");
        assert_eq!(format!("{:?}", Some(vec![s.clone()])), "Some([(redacted)])");
        assert_eq!(s.expose(), "whsec_topsecret");
    }

    #[test]
    fn a_list_splits_at_every_comma_like_clap() {
        let texts = |v: Vec<Secret>| v.iter().map(|s| s.expose().to_owned()).collect::<Vec<_>>();
        assert_eq!(
            texts(Secret::new("whsec_new,whsec_old").split_list()),
            ["whsec_new", "whsec_old"]
        );
        assert_eq!(texts(Secret::new("whsec_a").split_list()), ["whsec_a"]);
        assert_eq!(
            texts(Secret::new("whsec_a, whsec_b,").split_list()),
            ["whsec_a", " whsec_b", ""]
        );
        let list = Secret::new("whsec_a,,whsec_c").split_list();
        assert_eq!(first_blank(&list), Some(1));
        assert_eq!(first_blank(&Secret::new("whsec_a").split_list()), None);
        assert_eq!(first_blank(&[]), None);
    }

    /// `split_list` is the split clap makes of `--secret` for the commands
    /// that take several (one rule, whichever way a value arrives).
    #[test]
    fn a_list_splits_as_verify_serve_and_sign_parse_it() {
        use crate::cli::{Cli, Command};
        use clap::Parser;
        for value in ["whsec_a", "whsec_new,whsec_old", "a, b,", ",", "x,,y"] {
            let want: Vec<String> = Secret::new(value)
                .split_list()
                .iter()
                .map(|s| s.expose().to_owned())
                .collect();
            for command in ["verify", "serve", "sign"] {
                let cli = Cli::try_parse_from(["stripe-sync", command, "--secret", value]).unwrap();
                let parsed = match &cli.command {
                    Command::Verify(a) => &a.secrets,
                    Command::Serve(a) => &a.secrets,
                    Command::Sign(a) => &a.secrets,
                    _ => unreachable!(),
                };
                let got: Vec<String> = parsed.iter().map(|s| s.expose().to_owned()).collect();
                assert_eq!(got, want, "{command} --secret {value:?}");
            }
        }
    }
}
