//! `zhida audience --profiles FILE --rule FILE`: the audience preview, offline. Reads
//! profiles as JSON lines (the proto3 JSON mapping of `zhida.events.v1.Profile`, one per
//! line; a later line for the same subject replaces the earlier, as on the `profiles`
//! topic), checks them as the profiler would, and prints the ids the rule matches, one per
//! line, sorted. An invalid rule or line stops it with a message saying where.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Write},
    path::Path,
};

use serde_json::Value;
use zhida_audience::{Index, Rule};
use zhida_catalogue::{Catalogue, Tags};
use zhida_proto::events::v1::Profile;

/// Why the command failed: bad input (exit code 2) or an I/O problem (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum AudienceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Io(String),
}

pub fn run(profiles: &Path, rule: &Path, out: &mut impl Write) -> Result<(), AudienceError> {
    let catalogue = Catalogue::yangpu();
    let tags = Tags::built_in();
    let text = std::fs::read_to_string(rule).map_err(|e| read_error(rule, &e))?;
    let rule = Rule::parse(&text, &catalogue.industries)
        .map_err(|e| AudienceError::Invalid(format!("{}: {e}", rule.display())))?;

    let file = std::fs::File::open(profiles)
        .map_err(|e| AudienceError::Io(format!("{}: {e}", profiles.display())))?;
    let today = zhida_runtime::district::today();
    let mut index = Index::default();
    let mut documents: HashMap<String, Value> = HashMap::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let at = format!("{}:{}", profiles.display(), number + 1);
        let line = line.map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidData => AudienceError::Invalid(format!("{at}: not UTF-8")),
            _ => AudienceError::Io(format!("{at}: {e}")),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let profile = parse_profile(&line)
            .map_err(|e| AudienceError::Invalid(format!("{at}: not a Profile: {e}")))?;
        // Offline, the tag catalogue is the built-in one (a deployment's topic starts as it).
        if let Err(bad) = zhida_profiler::validate(Some(&profile), &today, &catalogue, &tags, None)
        {
            let problems: Vec<String> = bad
                .violations()
                .iter()
                .map(|(field, description)| format!("{field}: {description}"))
                .collect();
            return Err(AudienceError::Invalid(format!(
                "{at}: {}",
                problems.join("; ")
            )));
        }
        let document = zhida_profiler::document::profile(&profile);
        let previous = documents.insert(profile.subject_id.clone(), document.clone());
        index.upsert(&profile.subject_id, &document, previous.as_ref());
    }
    let mut ids = index.matching(&rule);
    ids.sort_unstable();
    for id in ids {
        match writeln!(out, "{id}") {
            Ok(()) => {}
            // The reader went away (`| head`): nothing more is wanted.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
            Err(e) => return Err(AudienceError::Io(format!("stdout: {e}"))),
        }
    }
    Ok(())
}

/// One line of a profiles file: the proto3 JSON of `zhida.events.v1.Profile` (also what
/// `zhida import` reads).
pub fn parse_profile(line: &str) -> Result<Profile, zhida_proto::json::JsonError> {
    zhida_proto::json::parse("zhida.events.v1.Profile", line)
}

/// A file that cannot be read is an I/O problem; one that is not UTF-8 is bad input.
fn read_error(path: &Path, error: &std::io::Error) -> AudienceError {
    match error.kind() {
        std::io::ErrorKind::InvalidData => {
            AudienceError::Invalid(format!("{}: not UTF-8", path.display()))
        }
        _ => AudienceError::Io(format!("{}: {error}", path.display())),
    }
}
