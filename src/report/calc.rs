//! What the calculator client (`sockeye calc`) reports as it runs, and how
//! it prints: each answer on stdout as soon as it is decided, in request
//! order (`RESULT` for a single request from the command line, `ID RESULT`
//! for a batch), and each request that got no answer as a line on stderr
//! while the others go on (UDP).

use std::io::{self, Write};

/// The server's answer to request `id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    pub id: u32,
    pub result: i32,
}

/// An event of the calculator client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CalcEvent {
    /// Answers, in request order: as many as one read brought.
    Answers(Vec<Answer>),
    /// A request that went unanswered, in words (the run goes on).
    Unanswered(String),
}

/// Prints a client run's events: answers to `out`, unanswered requests to
/// `err`. Keeps the first error writing `out`, for [`AnswerPrinter::finish`].
#[derive(Debug)]
pub struct AnswerPrinter<W: Write> {
    out: W,
    /// One request given on the command line: its answer alone, no ID.
    single: bool,
    failed: Option<io::Error>,
}

impl<W: Write> AnswerPrinter<W> {
    pub fn new(out: W, single: bool) -> Self {
        AnswerPrinter {
            out,
            single,
            failed: None,
        }
    }

    /// Prints one event; an error means the answers can no longer be written.
    pub fn event(&mut self, event: CalcEvent, err: &mut impl Write) -> io::Result<()> {
        match event {
            CalcEvent::Answers(answers) => {
                for Answer { id, result } in answers {
                    let written = if self.single {
                        writeln!(self.out, "{result}")
                    } else {
                        writeln!(self.out, "{id} {result}")
                    };
                    written.map_err(|e| self.keep(e))?;
                }
            }
            CalcEvent::Unanswered(why) => {
                let _ = writeln!(err, "sockeye: {why}");
            }
        }
        Ok(())
    }

    /// Flushes the answers; the first error writing them, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        self.out.flush()
    }

    /// Remembers the first write error and gives the caller one of its kind.
    fn keep(&mut self, e: io::Error) -> io::Error {
        let kind = e.kind();
        self.failed.get_or_insert(e);
        io::Error::from(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn printed(single: bool, events: Vec<CalcEvent>) -> (String, String) {
        let mut p = AnswerPrinter::new(Vec::new(), single);
        let mut err = Vec::new();
        for e in events {
            p.event(e, &mut err).expect("in memory");
        }
        let out = std::mem::take(&mut p.out);
        p.finish().expect("in memory");
        (
            String::from_utf8(out).expect("utf-8"),
            String::from_utf8(err).expect("utf-8"),
        )
    }

    #[test]
    fn answers_on_stdout_with_ids_for_a_batch_and_misses_on_stderr() {
        let answer = |id, result| CalcEvent::Answers(vec![Answer { id, result }]);
        let missed = CalcEvent::Unanswered("no reply to request 2".into());
        let two = CalcEvent::Answers(vec![
            Answer { id: 3, result: -4 },
            Answer { id: 4, result: 0 },
        ]);
        assert_eq!(
            printed(false, vec![answer(1, 6), missed.clone(), two]),
            (
                "1 6\n3 -4\n4 0\n".to_string(),
                "sockeye: no reply to request 2\n".to_string()
            )
        );
        assert_eq!(
            printed(true, vec![answer(7, 42)]),
            ("42\n".to_string(), String::new())
        );
    }

    #[test]
    fn the_first_write_error_is_kept_for_the_end() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut p = AnswerPrinter::new(Full, false);
        let err = p
            .event(
                CalcEvent::Answers(vec![Answer { id: 1, result: 2 }]),
                &mut Vec::new(),
            )
            .expect_err("cannot write");
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        let kept = p.finish().expect_err("kept");
        assert_eq!(kept.to_string(), "disk full");
    }
}
