//! `zhida import --file profiles.jsonl`: a directory system's bulk load through the
//! profiler's `ImportProfiles` stream. Reads profiles as JSON lines (the proto3 JSON of
//! `zhida.events.v1.Profile`, as `zhida audience` reads them) on a blocking thread, sends
//! them in chunks of consecutive lines (at most [`CHUNK_PROFILES`] profiles and about
//! [`CHUNK_BYTES`]), each numbered by its first line, and prints what the server answers:
//! each rejected line as `line N: <field>: <reason>` on stdout (a line that is not a
//! profile's JSON too, without stopping; as they are found, so not always in line order),
//! progress on stderr about once a second.
//!
//! Exit code: 0 when every line was imported (or already stored so), 2 when some lines
//! were rejected, 1 when the import stopped (the server, the connection or the file
//! failed); it then says up to which line everything was answered: those lines are
//! durable, and importing the file again is safe (a profile already stored is unchanged).

use std::{
    io::{BufRead, BufReader},
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use prost::Message as _;
use tokio::sync::mpsc;
use zhida_proto::profile::v1::{
    ImportProfilesRequest, ImportProfilesResponse, profile_service_client::ProfileServiceClient,
};
use zhida_runtime::auth::Bearer;

/// The most profiles one chunk carries: the server's cap.
const CHUNK_PROFILES: usize = 1_000;

/// A chunk is sent once it holds this many bytes, well under the server's default
/// `grpc.max_request_bytes` (1 MiB per message of an import stream).
const CHUNK_BYTES: usize = 512 * 1024;

/// Chunks read ahead of the server's answers: the next one is there when the server wants
/// it, and the reader waits beyond that (the stream's flow control).
const READ_AHEAD: usize = 2;

/// How the import ended (the exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Every line imported or unchanged.
    Imported,
    /// Some lines were rejected; the others were imported.
    Rejected,
}

/// Turns a file's lines into chunks of consecutive profile lines and per-line errors.
#[derive(Debug, Default)]
pub(crate) struct Chunker {
    chunk: ImportProfilesRequest,
    bytes: usize,
}

/// What one line makes.
#[derive(Debug, PartialEq)]
pub(crate) enum Read {
    /// A chunk to send (a chunk is sent when full, and at a line that breaks its run of
    /// consecutive profile lines).
    Chunk(ImportProfilesRequest),
    /// A line that is no profile.
    Bad { line: u64, reason: String },
}

impl Chunker {
    /// Takes line `number` (from 1); pushes what it makes onto `out`.
    pub fn line(&mut self, number: u64, text: Result<&str, String>, out: &mut Vec<Read>) {
        let parsed = text.and_then(|text| {
            if text.trim().is_empty() {
                return Ok(None);
            }
            crate::audience::parse_profile(text)
                .map(Some)
                .map_err(|e| format!("json: not a zhida.events.v1.Profile: {e}"))
        });
        match parsed {
            Ok(Some(profile)) => {
                let next = self.chunk.first_sequence + self.chunk.profiles.len() as u64;
                if !self.chunk.profiles.is_empty() && next != number {
                    out.extend(self.flush());
                }
                if self.chunk.profiles.is_empty() {
                    self.chunk.first_sequence = number;
                }
                self.bytes += profile.encoded_len();
                self.chunk.profiles.push(profile);
                if self.chunk.profiles.len() >= CHUNK_PROFILES || self.bytes >= CHUNK_BYTES {
                    out.extend(self.flush());
                }
            }
            // A blank line: nothing to import; it ends the chunk's run of lines.
            Ok(None) => out.extend(self.flush()),
            Err(reason) => {
                out.extend(self.flush());
                out.push(Read::Bad {
                    line: number,
                    reason,
                });
            }
        }
    }

    /// The chunk being filled, if it has profiles.
    pub fn flush(&mut self) -> Option<Read> {
        if self.chunk.profiles.is_empty() {
            return None;
        }
        self.bytes = 0;
        Some(Read::Chunk(std::mem::take(&mut self.chunk)))
    }
}

/// `line N: <field>: <reason>` for each violation of each rejected profile of `answer`.
pub(crate) fn rejections(answer: &ImportProfilesResponse) -> Vec<String> {
    answer
        .rejected
        .iter()
        .flat_map(|rejected| {
            rejected.violations.iter().map(move |violation| {
                format!(
                    "line {}: {}: {}",
                    rejected.sequence, violation.field, violation.description
                )
            })
        })
        .collect()
}

/// The counts the progress lines print, shared with the reader thread.
#[derive(Default)]
struct Progress {
    lines: AtomicU64,
    imported: AtomicU64,
    unchanged: AtomicU64,
    rejected: AtomicU64,
    /// The last line of the last chunk answered: every line up to it is done.
    answered_through: AtomicU64,
}

impl Progress {
    fn line(&self, started: Instant) -> String {
        let imported = self.imported.load(Ordering::Relaxed);
        let unchanged = self.unchanged.load(Ordering::Relaxed);
        let rate = (imported + unchanged) as f64 / started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "{} lines read, {imported} imported, {unchanged} unchanged, {} rejected, {rate:.0} profiles/s",
            self.lines.load(Ordering::Relaxed),
            self.rejected.load(Ordering::Relaxed),
        )
    }
}

/// Imports `file` into the profiler at `target`, calling with `token`.
pub async fn run(file: &Path, target: &str, token: Option<&str>) -> anyhow::Result<Ended> {
    let opened =
        std::fs::File::open(file).with_context(|| format!("reading {}", file.display()))?;
    let bearer = match token {
        Some(token) => Bearer::new(token).context("the token is not ASCII")?,
        None => Bearer::none(),
    };
    let channel = tonic::transport::Endpoint::from_shared(target.to_string())
        .with_context(|| format!("--target {target}"))?
        .connect()
        .await
        .with_context(|| format!("connecting to {target}"))?;
    let mut client = ProfileServiceClient::with_interceptor(channel, bearer);
    let progress = Arc::new(Progress::default());
    let started = Instant::now();
    let (chunks, outgoing) = mpsc::channel(READ_AHEAD);
    let reader = {
        let progress = progress.clone();
        let name = file.display().to_string();
        tokio::task::spawn_blocking(move || read(opened, &name, &chunks, &progress))
    };
    let mut answers = match client
        .import_profiles(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await
    {
        Ok(answers) => answers.into_inner(),
        Err(status) => anyhow::bail!(
            "the import did not start: {}: {}",
            status.code().description(),
            status.message()
        ),
    };
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let failed = loop {
        tokio::select! {
            answer = answers.message() => match answer {
                Ok(Some(answer)) => {
                    for line in rejections(&answer) {
                        println!("{line}");
                    }
                    let answered = u64::from(answer.imported)
                        + u64::from(answer.unchanged)
                        + answer.rejected.len() as u64;
                    progress.imported.fetch_add(answer.imported.into(), Ordering::Relaxed);
                    progress.unchanged.fetch_add(answer.unchanged.into(), Ordering::Relaxed);
                    progress.rejected.fetch_add(answer.rejected.len() as u64, Ordering::Relaxed);
                    progress.answered_through.store(
                        (answer.first_sequence + answered).saturating_sub(1),
                        Ordering::Relaxed,
                    );
                }
                Ok(None) => break None,
                Err(status) => break Some(status),
            },
            _ = ticker.tick() => eprintln!("import: {}", progress.line(started)),
        }
    };
    // The reader stops too once the stream is gone (its sends fail).
    drop(answers);
    let read = reader.await.context("the file reader panicked")?;
    eprintln!(
        "import: {} in {:.1} s",
        progress.line(started),
        started.elapsed().as_secs_f64()
    );
    let through = progress.answered_through.load(Ordering::Relaxed);
    if let Some(status) = failed {
        anyhow::bail!(
            "the import stopped after line {through} (every line up to it is imported or \
             reported; importing the file again is safe): {}: {}",
            status.code().description(),
            status.message()
        );
    }
    read.with_context(|| format!("the import stopped after line {through}"))?;
    Ok(if progress.rejected.load(Ordering::Relaxed) > 0 {
        Ended::Rejected
    } else {
        Ended::Imported
    })
}

/// Reads `file` into chunks sent on `chunks`, printing each line that is no profile; ends
/// early when the stream is gone.
fn read(
    file: std::fs::File,
    name: &str,
    chunks: &mpsc::Sender<ImportProfilesRequest>,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut reader = BufReader::new(file);
    let mut chunker = Chunker::default();
    let mut made = Vec::new();
    let mut buffer = Vec::new();
    let mut number = 0u64;
    let send = |made: &mut Vec<Read>| -> bool {
        for read in made.drain(..) {
            match read {
                Read::Chunk(chunk) => {
                    if chunks.blocking_send(chunk).is_err() {
                        return false;
                    }
                }
                Read::Bad { line, reason } => {
                    progress.rejected.fetch_add(1, Ordering::Relaxed);
                    println!("line {line}: {reason}");
                }
            }
        }
        true
    };
    loop {
        buffer.clear();
        let n = reader
            .read_until(b'\n', &mut buffer)
            .with_context(|| format!("reading {name} after line {number}"))?;
        if n == 0 {
            break;
        }
        number += 1;
        progress.lines.store(number, Ordering::Relaxed);
        let text = std::str::from_utf8(&buffer)
            .map(|text| text.trim_end_matches(['\n', '\r']))
            .map_err(|_| "not UTF-8".to_string());
        chunker.line(number, text, &mut made);
        if !send(&mut made) {
            return Ok(());
        }
    }
    made.extend(chunker.flush());
    send(&mut made);
    Ok(())
}

#[cfg(test)]
mod tests {
    use zhida_proto::profile::v1::{FieldViolation, RejectedProfile};

    use super::*;

    fn profile_line(id: &str) -> String {
        format!(
            r#"{{"subject_id": "{id}", "kind": "SUBJECT_KIND_CITIZEN", "display_name": "王芳"}}"#
        )
    }

    fn chunks_of(lines: &[String]) -> Vec<Read> {
        let mut chunker = Chunker::default();
        let mut out = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            chunker.line(i as u64 + 1, Ok(line), &mut out);
        }
        out.extend(chunker.flush());
        out
    }

    fn summary(reads: &[Read]) -> Vec<String> {
        reads
            .iter()
            .map(|read| match read {
                Read::Chunk(chunk) => {
                    format!("chunk {} x{}", chunk.first_sequence, chunk.profiles.len())
                }
                Read::Bad { line, .. } => format!("bad {line}"),
            })
            .collect()
    }

    #[test]
    fn chunks_hold_consecutive_lines_and_a_bad_line_is_reported_alone() {
        let mut lines: Vec<String> = (1..=5).map(|i| profile_line(&format!("c-{i}"))).collect();
        lines[2] = "{not json".into();
        lines.insert(4, "   ".into());
        let reads = chunks_of(&lines);
        assert_eq!(
            summary(&reads),
            vec!["chunk 1 x2", "bad 3", "chunk 4 x1", "chunk 6 x1"]
        );
        let Read::Bad { reason, .. } = &reads[1] else {
            panic!("a bad line");
        };
        assert!(reason.starts_with("json: "), "{reason}");
        let Read::Chunk(chunk) = &reads[3] else {
            panic!("a chunk");
        };
        assert_eq!(chunk.profiles[0].subject_id, "c-5");
    }

    #[test]
    fn a_chunk_is_sent_when_full() {
        let lines: Vec<String> = (1..=2_500)
            .map(|i| profile_line(&format!("c-{i}")))
            .collect();
        assert_eq!(
            summary(&chunks_of(&lines)),
            vec!["chunk 1 x1000", "chunk 1001 x1000", "chunk 2001 x500"]
        );
    }

    #[test]
    fn each_violation_of_a_rejected_profile_is_a_line_naming_its_line_and_field() {
        let answer = ImportProfilesResponse {
            first_sequence: 10,
            imported: 1,
            unchanged: 0,
            rejected: vec![RejectedProfile {
                sequence: 11,
                subject_id: "c-2".into(),
                violations: vec![
                    FieldViolation {
                        field: "profile.display_name".into(),
                        description: "required".into(),
                    },
                    FieldViolation {
                        field: "profile.kind".into(),
                        description: "required: CITIZEN or ENTERPRISE".into(),
                    },
                ],
            }],
        };
        assert_eq!(
            rejections(&answer),
            vec![
                "line 11: profile.display_name: required",
                "line 11: profile.kind: required: CITIZEN or ENTERPRISE"
            ]
        );
    }
}
