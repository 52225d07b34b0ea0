//! The policy library's full-text search (公文库, issue #10 point 5): an in-RAM tantivy index
//! of every published policy's title, summary, body, interpretation and FAQs, cut into words
//! by jieba ([`tokenizer`]), ranked by BM25 with field boosts, with highlighted fragments.
//!
//! The index is the publisher's to keep: it rebuilds it from `policy.events` at start
//! ([`Library::upsert`] per policy, one [`Library::commit`] at the end) and then updates it
//! per event, committing after each one (an upsert and commit of one policy takes a few
//! milliseconds in a 100,000-policy index, `just bench-search`), so a search right after the
//! RPC that caused a change sees it.
//!
//! Queries are not tantivy syntax: the user's text is cut into words (jieba's default mode)
//! and every word must occur in at least one of the searched fields, either whole or as all
//! of the dictionary words inside it (where the document's text was cut differently), so
//! "人才 公寓" and "人才公寓" both mean 人才 and 公寓. Building the query from words rather
//! than parsing it means no input is a syntax error; text without any searchable word (only
//! punctuation, say) is [`SearchError::Invalid`]. Phrase queries are deliberately not offered:
//! search-mode segmentation emits overlapping words whose positions do not line up with a
//! query's.

use std::{
    collections::{BTreeMap, HashSet},
    ops::Bound,
    sync::{Arc, Mutex, MutexGuard},
};

use anyhow::Context as _;
use jieba_rs::Jieba;
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, Term,
    collector::{Count, TopDocs},
    query::{
        BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query as TantivyQuery, RangeQuery,
        TermQuery,
    },
    schema::{
        Field, IndexRecordOption, NumericOptions, STORED, STRING, Schema, TextFieldIndexing,
        TextOptions, Value,
    },
    snippet::SnippetGenerator,
    tokenizer::TextAnalyzer,
};

pub mod tokenizer;

/// The longest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 200;
/// Hits returned when a query asks for none; more than [`MAX_LIMIT`] are never returned.
pub const DEFAULT_LIMIT: usize = 10;
pub const MAX_LIMIT: usize = 100;
/// A highlight's fragment: at most this many bytes of text (about 120 Chinese characters).
const FRAGMENT_BYTES: usize = 360;
/// The index writer's memory across its threads, before it flushes a segment.
const WRITER_MEMORY: usize = 128 << 20;
const WRITER_THREADS: usize = 2;

/// Words too common to narrow a query: dropped from it unless nothing else is left.
const STOP_WORDS: [&str; 10] = ["的", "了", "和", "与", "及", "或", "等", "在", "是", "关于"];

/// The searched fields with their boosts: a word in the title counts most, in the body least.
const TEXT_FIELDS: [(&str, f32); 5] = [
    ("title", 3.0),
    ("summary", 2.0),
    ("interpretation", 1.5),
    ("faqs", 1.5),
    ("body", 1.0),
];

/// One policy as the library holds it: its live version's content.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyDoc {
    pub policy_id: String,
    pub version: u32,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub interpretation: String,
    /// (question, answer) pairs.
    pub faqs: Vec<(String, String)>,
    pub department: String,
    pub tags: Vec<String>,
    /// `zhida_proto` `PolicyStatus` as i32.
    pub status: i32,
    /// Unix seconds; `None`: valid since ever.
    pub valid_from: Option<i64>,
    /// Unix seconds; `None`: valid until withdrawn.
    pub valid_until: Option<i64>,
}

#[derive(Debug, Clone, Default)]
pub struct Query {
    pub text: String,
    /// 0: [`DEFAULT_LIMIT`]; capped at [`MAX_LIMIT`].
    pub limit: usize,
    /// Only policies valid at this instant (unix seconds): `valid_from ≤ t ≤ valid_until`,
    /// a missing bound being open.
    pub valid_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub policy_id: String,
    pub version: u32,
    pub title: String,
    pub department: String,
    pub status: i32,
    pub score: f32,
    /// (field, fragment) for each field the query matched, in the order title, summary,
    /// interpretation, faqs, body: the fragment's matched words in `<em>…</em>`, the rest
    /// HTML-escaped.
    pub highlights: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub hits: Vec<Hit>,
    /// Every matching policy, not only those returned.
    pub total: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query cannot be searched (empty, too long, no searchable word): the caller's
    /// mistake, INVALID_ARGUMENT on `query`.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

#[derive(Clone, Copy)]
struct Fields {
    policy_id: Field,
    version: Field,
    /// In [`TEXT_FIELDS`]' order.
    text: [Field; 5],
    department: Field,
    tags: Field,
    status: Field,
    valid_from: Field,
    valid_until: Field,
}

impl Fields {
    fn title(&self) -> Field {
        self.text[0]
    }
    fn summary(&self) -> Field {
        self.text[1]
    }
    fn interpretation(&self) -> Field {
        self.text[2]
    }
    fn faqs(&self) -> Field {
        self.text[3]
    }
    fn body(&self) -> Field {
        self.text[4]
    }
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text_options = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(tokenizer::NAME)
                // Frequencies for BM25; no positions: queries are words, never phrases.
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    let policy_id = builder.add_text_field("policy_id", STRING | STORED);
    let version = builder.add_u64_field("version", STORED);
    let text = TEXT_FIELDS.map(|(name, _)| builder.add_text_field(name, text_options.clone()));
    let department = builder.add_text_field("department", STRING | STORED);
    let tags = builder.add_text_field("tags", STRING | STORED);
    let status = builder.add_i64_field("status", NumericOptions::default().set_stored());
    let bound = NumericOptions::default()
        .set_indexed()
        .set_fast()
        .set_stored();
    let valid_from = builder.add_i64_field("valid_from", bound.clone());
    let valid_until = builder.add_i64_field("valid_until", bound);
    let fields = Fields {
        policy_id,
        version,
        text,
        department,
        tags,
        status,
        valid_from,
        valid_until,
    };
    (builder.build(), fields)
}

/// The writer and the policies changed since the last commit.
struct Writer {
    writer: IndexWriter,
    /// Policy ids upserted or removed since the last commit: [`Library::set_status`] commits
    /// before it reads one of them back (the searcher only sees committed documents).
    changed: HashSet<String>,
}

/// The library's index; see the crate docs. `Send + Sync`: share it in an `Arc`. Writes are
/// serialised by one lock; searches never wait for them.
pub struct Library {
    reader: IndexReader,
    writer: Mutex<Writer>,
    fields: Fields,
    jieba: Arc<Jieba>,
}

impl Library {
    pub fn new() -> anyhow::Result<Self> {
        let (schema, fields) = schema();
        let index = Index::create_in_ram(schema);
        let jieba = tokenizer::jieba();
        index.tokenizers().register(
            tokenizer::NAME,
            TextAnalyzer::from(tokenizer::JiebaTokenizer::new(jieba.clone())),
        );
        let writer = index
            .writer_with_num_threads(WRITER_THREADS, WRITER_MEMORY)
            .context("search index writer")?;
        // Commits reload explicitly (a search right after a commit must see it); the policy
        // picks up the segments background merges produce later.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .context("search index reader")?;
        Ok(Self {
            reader,
            writer: Mutex::new(Writer {
                writer,
                changed: HashSet::new(),
            }),
            fields,
            jieba,
        })
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock leaves nothing half-done that matters: tantivy's
        // own state is consistent between calls.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `doc`, replacing the policy's previous one; searchable after [`Self::commit`].
    pub fn upsert(&self, doc: PolicyDoc) -> anyhow::Result<()> {
        let mut writer = self.writer();
        self.replace(&mut writer, &doc)
    }

    fn replace(&self, writer: &mut Writer, doc: &PolicyDoc) -> anyhow::Result<()> {
        let f = &self.fields;
        writer
            .writer
            .delete_term(Term::from_field_text(f.policy_id, &doc.policy_id));
        writer
            .writer
            .add_document(self.to_document(doc))
            .context("index policy")?;
        writer.changed.insert(doc.policy_id.clone());
        Ok(())
    }

    /// Takes the policy out; effective after [`Self::commit`].
    pub fn remove(&self, policy_id: &str) -> anyhow::Result<()> {
        let mut writer = self.writer();
        writer
            .writer
            .delete_term(Term::from_field_text(self.fields.policy_id, policy_id));
        writer.changed.insert(policy_id.to_string());
        Ok(())
    }

    /// Sets the status of a policy the library holds (re-adding its stored document);
    /// effective after [`Self::commit`]. A policy the library does not hold is left alone.
    /// If the policy changed since the last commit, this commits first.
    pub fn set_status(&self, policy_id: &str, status: i32) -> anyhow::Result<()> {
        let mut writer = self.writer();
        if writer.changed.contains(policy_id) {
            self.commit_locked(&mut writer)?;
        }
        let searcher = self.reader.searcher();
        let Some(address) = self.address_of(&searcher, policy_id)? else {
            return Ok(());
        };
        let stored: TantivyDocument = searcher.doc(address).context("stored policy")?;
        let mut doc = self.read_document(&stored);
        if doc.status == status {
            return Ok(());
        }
        doc.status = status;
        self.replace(&mut writer, &doc)
    }

    /// Makes every change so far searchable; a search that starts after this returns sees
    /// them. Rebuilds call it once at the end, live updates after each event.
    pub fn commit(&self) -> anyhow::Result<()> {
        let mut writer = self.writer();
        self.commit_locked(&mut writer)
    }

    fn commit_locked(&self, writer: &mut Writer) -> anyhow::Result<()> {
        writer.writer.commit().context("commit search index")?;
        self.reader.reload().context("reload search index")?;
        writer.changed.clear();
        Ok(())
    }

    /// Policies searchable now (committed).
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Index segments a search visits now (background merges lower it): for diagnostics
    /// and the benchmark.
    pub fn segment_count(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// The policies matching every word of `query.text`, best first.
    pub fn search(&self, query: &Query) -> Result<Found, SearchError> {
        let text = query.text.trim();
        if text.is_empty() {
            return Err(SearchError::Invalid("query is empty".into()));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(SearchError::Invalid(format!(
                "query is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let mut words = tokenizer::query_words(&self.jieba, text);
        if words.iter().any(|w| !STOP_WORDS.contains(&w.word.as_str())) {
            words.retain(|w| !STOP_WORDS.contains(&w.word.as_str()));
        }
        if words.is_empty() {
            return Err(SearchError::Invalid(
                "query has no searchable word (letters, digits or Chinese characters)".into(),
            ));
        }
        let limit = match query.limit {
            0 => DEFAULT_LIMIT,
            n => n.min(MAX_LIMIT),
        };
        let tantivy_query = self.build_query(&words, query.valid_at);
        let searcher = self.reader.searcher();
        let (top, total) = searcher
            .search(
                &tantivy_query,
                &(TopDocs::with_limit(limit).order_by_score(), Count),
            )
            .context("search")?;
        // Highlighted: the words and their parts (what a document matched by its parts holds).
        let mut marked: Vec<String> = Vec::new();
        for word in &words {
            for text in std::iter::once(&word.word).chain(&word.parts) {
                if !marked.contains(text) {
                    marked.push(text.clone());
                }
            }
        }
        let mut generators = Vec::with_capacity(TEXT_FIELDS.len());
        let highlighter = TextAnalyzer::from(tokenizer::HighlightTokenizer::new(&marked));
        for ((name, _), field) in TEXT_FIELDS.iter().zip(self.fields.text) {
            // As tantivy's `SnippetGenerator::create` weighs them: rarer words pick the
            // fragment.
            let mut weights = BTreeMap::new();
            for word in &marked {
                let documents = searcher
                    .doc_freq(&Term::from_field_text(field, word))
                    .context("snippets")?;
                if documents > 0 {
                    weights.insert(word.clone(), 1.0 / (1.0 + documents as f32));
                }
            }
            if !weights.is_empty() {
                let generator =
                    SnippetGenerator::new(weights, highlighter.clone(), field, FRAGMENT_BYTES);
                generators.push((*name, field, generator));
            }
        }
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let stored: TantivyDocument = searcher.doc(address).context("stored policy")?;
            let mut highlights = Vec::new();
            for (name, field, generator) in &generators {
                // Only a field that holds one of the words can have matched; cutting the
                // others into words again would be wasted.
                let mentions = stored.get_all(*field).any(|value| {
                    value
                        .as_str()
                        .is_some_and(|text| contains_any(text, &marked))
                });
                if !mentions {
                    continue;
                }
                let mut snippet = generator.snippet_from_doc(&stored);
                if snippet.is_empty() {
                    continue;
                }
                snippet.set_snippet_prefix_postfix("<em>", "</em>");
                // Adjacent words (人才 + 公寓) become one highlight.
                let html = snippet.to_html().replace("</em><em>", "");
                highlights.push(((*name).to_string(), html));
            }
            let doc = self.read_document(&stored);
            hits.push(Hit {
                policy_id: doc.policy_id,
                version: doc.version,
                title: doc.title,
                department: doc.department,
                status: doc.status,
                score,
                highlights,
            });
        }
        Ok(Found {
            hits,
            total: total as u64,
        })
    }

    /// Every word must match, in any field (the fields boosted): itself, or all of its parts
    /// (a document holding the word itself also holds its parts, so it scores higher).
    /// `valid_at` filters without scoring.
    fn build_query(&self, words: &[tokenizer::QueryWord], valid_at: Option<i64>) -> BooleanQuery {
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = words
            .iter()
            .map(|word| {
                let whole = self.in_any_field(&word.word);
                let clause: Box<dyn TantivyQuery> = if word.parts.is_empty() {
                    whole
                } else {
                    let parts = word
                        .parts
                        .iter()
                        .map(|part| (Occur::Must, self.in_any_field(part)))
                        .collect();
                    Box::new(BooleanQuery::new(vec![
                        (Occur::Should, whole),
                        (Occur::Should, Box::new(BooleanQuery::new(parts))),
                    ]))
                };
                (Occur::Must, clause)
            })
            .collect();
        if let Some(t) = valid_at {
            let from = RangeQuery::new(
                Bound::Unbounded,
                Bound::Included(Term::from_field_i64(self.fields.valid_from, t)),
            );
            let until = RangeQuery::new(
                Bound::Included(Term::from_field_i64(self.fields.valid_until, t)),
                Bound::Unbounded,
            );
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(from), 0.0)),
            ));
            clauses.push((
                Occur::Must,
                Box::new(ConstScoreQuery::new(Box::new(until), 0.0)),
            ));
        }
        BooleanQuery::new(clauses)
    }

    /// `word` in any searched field, each field's match boosted by its weight.
    fn in_any_field(&self, word: &str) -> Box<dyn TantivyQuery> {
        let per_field = TEXT_FIELDS
            .iter()
            .zip(self.fields.text)
            .map(|((_, boost), field)| {
                let term = TermQuery::new(
                    Term::from_field_text(field, word),
                    IndexRecordOption::WithFreqs,
                );
                let boosted: Box<dyn TantivyQuery> =
                    Box::new(BoostQuery::new(Box::new(term), *boost));
                (Occur::Should, boosted)
            })
            .collect();
        Box::new(BooleanQuery::new(per_field))
    }

    /// The document of `policy_id` among the committed ones.
    fn address_of(
        &self,
        searcher: &Searcher,
        policy_id: &str,
    ) -> anyhow::Result<Option<DocAddress>> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.policy_id, policy_id),
            IndexRecordOption::Basic,
        );
        let top = searcher
            .search(&query, &TopDocs::with_limit(1).order_by_score())
            .context("find policy")?;
        Ok(top.first().map(|(_, address)| *address))
    }

    fn to_document(&self, doc: &PolicyDoc) -> TantivyDocument {
        let f = &self.fields;
        let mut out = TantivyDocument::new();
        out.add_text(f.policy_id, &doc.policy_id);
        out.add_u64(f.version, u64::from(doc.version));
        out.add_text(f.title(), &doc.title);
        out.add_text(f.summary(), &doc.summary);
        out.add_text(f.interpretation(), &doc.interpretation);
        // Question and answer alternate, so the pairs come back in order.
        for (question, answer) in &doc.faqs {
            out.add_text(f.faqs(), question);
            out.add_text(f.faqs(), answer);
        }
        out.add_text(f.body(), &doc.body);
        out.add_text(f.department, &doc.department);
        for tag in &doc.tags {
            out.add_text(f.tags, tag);
        }
        out.add_i64(f.status, i64::from(doc.status));
        // Missing bounds are open: the extreme values keep the range filters simple.
        out.add_i64(f.valid_from, doc.valid_from.unwrap_or(i64::MIN));
        out.add_i64(f.valid_until, doc.valid_until.unwrap_or(i64::MAX));
        out
    }

    fn read_document(&self, doc: &TantivyDocument) -> PolicyDoc {
        let f = &self.fields;
        let text = |field: Field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let texts = |field: Field| -> Vec<String> {
            doc.get_all(field)
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        };
        let int = |field: Field| doc.get_first(field).and_then(|v| v.as_i64());
        let faqs = texts(f.faqs())
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
            .collect();
        PolicyDoc {
            policy_id: text(f.policy_id),
            version: doc
                .get_first(f.version)
                .and_then(|v| v.as_u64())
                .and_then(|v| u32::try_from(v).ok())
                .unwrap_or_default(),
            title: text(f.title()),
            summary: text(f.summary()),
            body: text(f.body()),
            interpretation: text(f.interpretation()),
            faqs,
            department: text(f.department),
            tags: texts(f.tags),
            status: int(f.status)
                .and_then(|v| i32::try_from(v).ok())
                .unwrap_or_default(),
            valid_from: int(f.valid_from).filter(|v| *v != i64::MIN),
            valid_until: int(f.valid_until).filter(|v| *v != i64::MAX),
        }
    }
}

/// Whether `text` holds one of the (lower-cased) `words`.
fn contains_any(text: &str, words: &[String]) -> bool {
    let lowered;
    let haystack = if text.bytes().any(|b| b.is_ascii_uppercase()) {
        lowered = text.to_lowercase();
        lowered.as_str()
    } else {
        text
    };
    words.iter().any(|word| haystack.contains(word.as_str()))
}

#[cfg(test)]
mod tests;
