//! A registered model's options: offered on the command line as `--NAME VALUE`, checked
//! against what the option allows, and stored in checkpoints' metadata under `NAME`.

use super::{ModelEntry, RegistryError};
use std::collections::HashMap;

/// What values an option takes.
#[derive(Clone, Copy, Debug)]
pub enum OptionValues {
    /// One of these words.
    OneOf(&'static [&'static str]),
    /// A whole number from `min` to `max` (hidden sizes, layer counts).
    Number { min: usize, max: usize },
}

impl OptionValues {
    /// Whether `value` is allowed.
    pub fn allows(&self, value: &str) -> bool {
        match *self {
            OptionValues::OneOf(words) => words.contains(&value),
            OptionValues::Number { min, max } => value.parse::<usize>().is_ok_and(|n| (min..=max).contains(&n)),
        }
    }

    /// The allowed values, as an error message says them.
    pub fn describe(&self) -> String {
        match *self {
            OptionValues::OneOf(words) => format!("one of {words:?}"),
            OptionValues::Number { min, max } => format!("a whole number from {min} to {max}"),
        }
    }
}

/// A model option.
#[derive(Clone, Copy, Debug)]
pub struct ModelOption {
    pub name: &'static str,
    pub help: &'static str,
    pub values: OptionValues,
    pub default: &'static str,
}

/// The option values of one model, every option set (defaults where not given).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    values: Vec<(&'static str, String)>,
}

impl Options {
    /// The value of option `name` (every registered option has one).
    pub fn get(&self, name: &str) -> &str {
        self.values.iter().find(|(n, _)| *n == name).map_or("", |(_, v)| v)
    }
    /// Option `name` as a whole number (checked when the options were made), else `default`.
    pub fn number(&self, name: &str, default: usize) -> usize {
        self.get(name).parse().unwrap_or(default)
    }
    /// `(name, value)` in the entry's order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(n, v)| (*n, v.as_str()))
    }
}

impl ModelEntry {
    /// Checks `given` (`(option, value)` pairs) against the entry's options, filling in
    /// defaults.
    pub fn options<'a>(&self, given: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Options, RegistryError> {
        let mut values: Vec<(&'static str, String)> =
            self.options.iter().map(|o| (o.name, o.default.to_string())).collect();
        for (name, value) in given {
            let Some(i) = self.options.iter().position(|o| o.name == name) else {
                return Err(RegistryError::UnknownOption { model: self.name, option: name.into() });
            };
            let o = &self.options[i];
            if !o.values.allows(value) {
                return Err(RegistryError::BadValue {
                    model: self.name,
                    option: o.name,
                    allowed: o.values.describe(),
                    got: value.into(),
                });
            }
            values[i].1 = value.to_string();
        }
        Ok(Options { values })
    }

    /// The options a checkpoint's metadata records (an error if it is another model's).
    pub fn recorded_options(&self, meta: &HashMap<String, String>) -> Result<Options, RegistryError> {
        self.check_recorded(meta)?;
        self.options(self.options.iter().filter_map(|o| Some((o.name, meta.get(o.name)?.as_str()))))
    }
}
