//! Short job ids through the real binary: `list` shows the shortest unique
//! prefix of each id, every command taking an id accepts one, an ambiguous
//! prefix is exit 2 listing the jobs, an unknown one exit 3.

use jobq::Queue;

use crate::backends::{both, Db};
use crate::util::{Sandbox, TEST_CONFIG};

fn sandbox(db: &Db) -> Sandbox {
    let s = Sandbox::on(db);
    s.config(TEST_CONFIG);
    s
}

/// The first column of `jobq list ARGS`'s rows.
fn id_column(s: &Sandbox, args: &[&str]) -> Vec<String> {
    let out = s.ok(args);
    let rows = out.lines().skip(1).filter(|l| !l.contains(" of "));
    rows.map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// A batch of `n` jobs enqueued in one transaction (ids made microseconds apart).
fn batch(s: &Sandbox, n: usize) {
    let lines: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"job_type": "echo", "payload": {{"i": {i}}}}}"#))
        .collect();
    let file = s.path().join("batch.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    s.ok(&["enqueue", "--jsonl", file.to_str().unwrap()]);
}

both! {
fn list_shows_short_ids_that_name_their_jobs(db) {
    let s = sandbox(&db);
    for _ in 0..3 {
        s.ok(&["enqueue", "echo"]);
    }
    batch(&s, 40);
    let short = id_column(&s, &["list"]);
    let full = id_column(&s, &["list", "--full-ids"]);
    assert_eq!(short.len(), 43);
    let hex = |id: &str| id.replace('-', "");
    for (short, one) in short.iter().zip(&full) {
        assert!(one.starts_with(short.as_str()), "{short} starts {one}");
        // Ids made in one batch step their counter by 1 to 65,536, so now and
        // then two differ only in their last hex digit: then the whole id is
        // the shortest that names one of them.
        let twin = full
            .iter()
            .any(|o| o != one && hex(o)[..31] == hex(one)[..31]);
        assert!(short.len() < one.len() || twin, "{short} is shorter");
        assert!(short.chars().filter(char::is_ascii_hexdigit).count() >= 8);
        let shown = s.json(&["show", short]);
        assert_eq!(shown["id"], one.as_str(), "{short} names its job");
    }
    let json = s.json(&["list"]);
    assert_eq!(
        json["jobs"][0]["id"],
        full[0].as_str(),
        "JSON keeps whole ids"
    );
}
}

both! {
fn retry_and_cancel_take_a_prefix(db) {
    let s = sandbox(&db);
    let id = s.ok(&["enqueue", "echo"]);
    let short = &id_column(&s, &["list"])[0];
    let out = s.ok(&["cancel", short]);
    assert_eq!(out, format!("job {id} is cancelled"));
    let out = s.ok(&["retry", short]);
    assert_eq!(out, format!("job {id} is pending"));
    let hyphenless: String = id.chars().filter(|c| *c != '-').take(12).collect();
    assert_eq!(
        s.json(&["show", &hyphenless.to_uppercase()])["id"],
        id.as_str()
    );
    assert_eq!(
        s.json(&["show", &id])["id"],
        id.as_str(),
        "a whole id as is"
    );
}
}

both! {
/// Ids of the same batch share long prefixes; a prefix they share is ambiguous.
fn an_ambiguous_prefix_is_exit_2_listing_the_jobs(db) {
    let s = sandbox(&db);
    batch(&s, 30);
    let mut full = id_column(&s, &["list", "--full-ids"]);
    full.sort();
    // At least 2 of 30 ids made within a second share their first 8 digits;
    // the newest such pair is the newest two matches of their common start,
    // so both are listed (the newest 10 are).
    let (a, b) = full
        .windows(2)
        .map(|w| (&w[0], &w[1]))
        .rfind(|(a, b)| a[..8] == b[..8])
        .expect("two ids share 8 digits");
    let common: String = a
        .chars()
        .zip(b.chars())
        .take_while(|(x, y)| x == y)
        .map(|p| p.0)
        .collect();
    let run = s.run(&["show", &common]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("is ambiguous"), "{}", run.stderr);
    assert!(run.stderr.contains(a.as_str()) && run.stderr.contains(b.as_str()));
    for cmd in ["retry", "cancel"] {
        assert_eq!(s.run(&[cmd, &common]).code, 2, "{cmd}");
    }
    assert_eq!(s.json(&["show", a])["status"], "pending", "nothing changed");
}
}

both! {
fn an_ambiguous_prefix_lists_at_most_ten_jobs(db) {
    let s = sandbox(&db);
    batch(&s, 30);
    let full = id_column(&s, &["list", "--full-ids"]);
    let prefix = crowded_prefix(&full);
    let run = s.run(&["show", prefix]);
    assert_eq!(run.code, 2, "{run:?}");
    let listed = run
        .stderr
        .lines()
        .filter(|l| full.iter().any(|id| l.contains(id.as_str())));
    assert_eq!(listed.count(), jobq::MAX_LISTED_MATCHES, "{}", run.stderr);
    assert!(run.stderr.contains("and more"), "{}", run.stderr);
}
}

both! {
fn an_unknown_prefix_is_exit_3_and_a_short_one_exit_2(db) {
    let s = sandbox(&db);
    s.ok(&["enqueue", "echo"]);
    for cmd in ["show", "retry", "cancel"] {
        let run = s.run(&[cmd, "ffffffff"]);
        assert_eq!(run.code, 3, "{cmd}: {run:?}");
        assert!(run.stderr.contains("no job id starts with ffffffff"));
        for bad in ["0123456", "0123456g", "0123-4567"] {
            let run = s.run(&[cmd, bad]);
            assert_eq!(run.code, 2, "{cmd} {bad}: {run:?}");
            assert!(run.stderr.contains("invalid id"), "{}", run.stderr);
        }
    }
}
}

both! {
/// The library resolves what the binary shows: the same rule in both.
fn the_library_resolves_short_ids_and_refuses_ambiguity(db) {
    let s = sandbox(&db);
    batch(&s, 20);
    let queue = Queue::open(s.location()).unwrap();
    let page = queue.list(&jobq::JobFilter::default(), 20, None).unwrap();
    for job in &page.jobs {
        let short = queue.short_id(job.id).unwrap();
        assert_eq!(queue.resolve_id(&short).unwrap(), job.id);
        let shorter = &short[..short.len() - 1];
        if shorter.chars().filter(char::is_ascii_hexdigit).count() >= 8 {
            let e = queue.resolve_id(shorter.trim_end_matches('-'));
            assert!(
                matches!(e, Err(jobq::Error::AmbiguousId { .. })),
                "{short} is the shortest unique prefix: {e:?}"
            );
        }
    }
}
}

both! {
fn an_ambiguous_prefix_lists_the_newest_matches_first_as_list_does(db) {
    let s = sandbox(&db);
    batch(&s, 30);
    let full = id_column(&s, &["list", "--full-ids"]); // newest first
    let prefix = crowded_prefix(&full);
    let run = s.run(&["show", prefix]);
    assert_eq!(run.code, 2, "{run:?}");
    let listed: Vec<&str> = run
        .stderr
        .split_whitespace()
        .filter(|w| full.iter().any(|id| id == w))
        .collect();
    let newest: Vec<&str> = full
        .iter()
        .filter(|id| id.starts_with(prefix))
        .take(jobq::MAX_LISTED_MATCHES)
        .map(String::as_str)
        .collect();
    assert_eq!(listed, newest, "{}", run.stderr);
}
}

/// 8 leading digits that more than 10 of `full` share: of 30 ids made within
/// a second, at least 15 share their first 8 digits.
fn crowded_prefix(full: &[String]) -> &str {
    full.iter()
        .map(|id| &id[..8])
        .find(|p| full.iter().filter(|id| id.starts_with(p)).count() > 10)
        .expect("more than 10 ids share 8 digits")
}
