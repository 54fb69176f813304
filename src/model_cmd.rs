//! The command-line plumbing every per-model subcommand shares: one subcommand per
//! registered model with its options as flags (`simdnn train lenet5 --pooling avg`), the
//! kernel configuration, and `--input H W`.

use clap::builder::PossibleValuesParser;
use clap::error::ErrorKind;
use clap::{Arg, ArgMatches, Args, Command, FromArgMatches, Subcommand};
use simdnn::kernels::gemm::GemmConfig;
use simdnn::kernels::threading::default_threads;
use simdnn::kernels::Isa;
use simdnn::models::registry::{self, ModelEntry, OptionValues, MODELS};
use std::error::Error;

/// The arguments of a per-model command, and whether it takes the model's options (eval
/// reads them from the checkpoint).
pub trait ModelArgs: Args {
    const TAKES_OPTIONS: bool;
}

/// A registered model's subcommand: `simdnn train lenet5 --pooling avg ...`.
pub struct ModelCommand<A> {
    entry: &'static ModelEntry,
    args: A,
    /// The model options given on the command line.
    options: Vec<(&'static str, String)>,
}

impl<A> ModelCommand<A> {
    /// The entry, the command's arguments, and the model options given.
    pub fn into_parts(self) -> (&'static ModelEntry, A, Vec<(&'static str, String)>) {
        (self.entry, self.args, self.options)
    }
}

impl<A: ModelArgs> FromArgMatches for ModelCommand<A> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let (name, sub) = matches
            .subcommand()
            .ok_or_else(|| clap::Error::raw(ErrorKind::MissingSubcommand, "a model name is required"))?;
        let entry = registry::find(name).map_err(|e| clap::Error::raw(ErrorKind::InvalidSubcommand, e))?;
        let options = if A::TAKES_OPTIONS {
            entry.options.iter().filter_map(|o| Some((o.name, sub.get_one::<String>(o.name)?.clone()))).collect()
        } else {
            Vec::new()
        };
        Ok(ModelCommand { entry, args: A::from_arg_matches(sub)?, options })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl<A: ModelArgs> Subcommand for ModelCommand<A> {
    fn augment_subcommands(cmd: Command) -> Command {
        MODELS.iter().fold(cmd, |cmd, entry| {
            let sub = A::augment_args(Command::new(entry.name).about(entry.about));
            let sub = if A::TAKES_OPTIONS {
                entry.options.iter().fold(sub, |sub, o| {
                    let arg = Arg::new(o.name).long(o.name).help(o.help).default_value(o.default);
                    sub.arg(match o.values {
                        OptionValues::OneOf(words) => {
                            arg.value_parser(PossibleValuesParser::new(words.iter().copied()))
                        }
                        values => arg.value_parser(move |v: &str| {
                            if values.allows(v) {
                                Ok(v.to_string())
                            } else {
                                Err(format!("must be {}", values.describe()))
                            }
                        }),
                    })
                })
            } else {
                sub
            };
            cmd.subcommand(sub)
        })
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        Self::augment_subcommands(cmd)
    }

    fn has_subcommand(name: &str) -> bool {
        registry::find(name).is_ok()
    }
}

/// `--input H W` as a pair.
pub(crate) fn input_size(v: &Option<Vec<usize>>) -> Option<(usize, usize)> {
    v.as_ref().and_then(|v| Some((*v.first()?, *v.get(1)?)))
}

/// The kernel path this CPU runs best, on `threads` threads (else `SIMDNN_THREADS`, else
/// every CPU).
pub(crate) fn gemm_config(threads: Option<usize>) -> Result<GemmConfig, Box<dyn Error>> {
    Ok(GemmConfig::new(Isa::current()?, threads.map_or_else(default_threads, Ok)?)?)
}
