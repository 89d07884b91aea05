//! argon2id verification with bounded cost: a fixed set of worker threads, one per core,
//! each reusing one memory block, behind a bounded queue.
//!
//! argon2id is memory-hard by design (19 MiB per verification at the default parameters).
//! Run on Tokio's blocking pool, a flood of wrong passwords would start hundreds of threads,
//! each allocating its block afresh and leaving it in a per-thread arena: gigabytes of
//! resident memory. Here memory is `workers × m` and stays so, and when the queue is full a
//! caller is refused at once ([`Busy`]) instead of waiting without bound.
//!
//! A second, smaller queue is served first (three turns in four): sign-ins from a browser
//! that proved, with a device cookie, that this user signed in there before. A flood from
//! strangers fills the ordinary queue and is refused; people on their own browsers still
//! get through, and the ordinary lane is never shut out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};

/// The verification queue is full: try again in a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("password verification is saturated; try again shortly")]
pub struct Busy;

/// The largest `m` (KiB) a stored hash may ask for: 256 MiB per worker.
const MAX_M_COST: u32 = 256 * 1024;

struct Job {
    password: Vec<u8>,
    phc: String,
    reply: Option<tokio::sync::oneshot::Sender<bool>>,
}

impl Drop for Job {
    fn drop(&mut self) {
        self.password.fill(0);
    }
}

/// Which queue a verification waits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Ordinary,
    /// Served first (a known device).
    Priority,
}

#[derive(Default)]
struct Queues {
    ordinary: VecDeque<Job>,
    priority: VecDeque<Job>,
    /// The verifier is gone: workers finish what is queued, then stop.
    closed: bool,
    /// Priority jobs served in a row; the ordinary lane gets every fourth turn, so a busy
    /// priority lane slows strangers down but never shuts them out.
    streak: u8,
}

impl Queues {
    fn next(&mut self) -> Option<Job> {
        let ordinary_turn = self.streak >= 3 && !self.ordinary.is_empty();
        match (ordinary_turn, self.priority.pop_front()) {
            (false, Some(j)) => {
                self.streak += 1;
                Some(j)
            }
            (true, Some(j)) => {
                self.priority.push_front(j);
                self.streak = 0;
                self.ordinary.pop_front()
            }
            (_, None) => {
                self.streak = 0;
                self.ordinary.pop_front()
            }
        }
    }
}

struct Shared {
    queues: Mutex<Queues>,
    ready: Condvar,
    capacity: usize,
    priority_capacity: usize,
}

pub struct PasswordVerifier {
    shared: Arc<Shared>,
    depth: Arc<AtomicUsize>,
    /// Verifications run to the end, ever (metrics and tests count them).
    completed: Arc<AtomicUsize>,
    workers: usize,
}

impl std::fmt::Debug for PasswordVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordVerifier")
            .field("workers", &self.workers)
            .field("queued", &self.queued())
            .finish()
    }
}

impl PasswordVerifier {
    /// `workers` threads (at least one) and room for `queue` waiting verifications (and a
    /// quarter as many in the priority lane).
    pub fn new(workers: usize, queue: usize) -> Arc<Self> {
        let workers = workers.max(1);
        let shared = Arc::new(Shared {
            queues: Mutex::new(Queues::default()),
            ready: Condvar::new(),
            capacity: queue.max(1),
            priority_capacity: (queue / 4).max(1),
        });
        let depth = Arc::new(AtomicUsize::new(0));
        let completed = Arc::new(AtomicUsize::new(0));
        for i in 0..workers {
            let shared = shared.clone();
            let depth = depth.clone();
            let completed = completed.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || worker(&shared, &depth, &completed));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password verification thread");
            }
        }
        Arc::new(Self {
            shared,
            depth,
            completed,
            workers,
        })
    }

    /// One worker per available core, and a queue of sixteen per worker: at ~60 ms a
    /// verification, nobody waits in it for more than about a second.
    pub fn for_this_machine() -> Arc<Self> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self::new(cores, cores * 16)
    }

    /// Verifications waiting or running.
    pub fn queued(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Verifications completed since start.
    pub fn completed(&self) -> usize {
        self.completed.load(Ordering::Relaxed)
    }

    /// Checks `password` against an argon2 PHC string. A malformed hash never matches.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Busy> {
        self.verify_in(Lane::Ordinary, password, phc).await
    }

    /// As [`Self::verify`], waiting in `lane`.
    pub async fn verify_in(&self, lane: Lane, password: &str, phc: &str) -> Result<bool, Busy> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job {
            password: password.as_bytes().to_vec(),
            phc: phc.to_string(),
            reply: Some(reply),
        };
        {
            let mut q = self.shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            let (queue, capacity) = match lane {
                Lane::Ordinary => (&mut q.ordinary, self.shared.capacity),
                Lane::Priority => (&mut q.priority, self.shared.priority_capacity),
            };
            if queue.len() >= capacity {
                return Err(Busy);
            }
            queue.push_back(job);
            self.depth.fetch_add(1, Ordering::Relaxed);
        }
        self.shared.ready.notify_one();
        // A dropped reply means the worker died; treat it as a refusal, not a match.
        Ok(answer.await.unwrap_or(false))
    }
}

impl Drop for PasswordVerifier {
    fn drop(&mut self) {
        self.shared
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .closed = true;
        self.shared.ready.notify_all();
    }
}

fn worker(shared: &Shared, depth: &AtomicUsize, completed: &AtomicUsize) {
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let mut job = {
            let mut q = shared.queues.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(j) = q.next() {
                    break j;
                }
                if q.closed {
                    return;
                }
                q = shared.ready.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        };
        let ok = verify_with(&mut memory, &job.password, &job.phc);
        completed.fetch_add(1, Ordering::Relaxed);
        depth.fetch_sub(1, Ordering::Relaxed);
        if let Some(reply) = job.reply.take() {
            let _ = reply.send(ok);
        }
    }
}

/// Verifies in `memory`, growing it when a hash needs more and keeping it for the next.
fn verify_with(memory: &mut Vec<Block>, password: &[u8], phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST {
        tracing::warn!(
            m_cost = params.m_cost(),
            "a stored argon2 hash asks for more than 256 MiB; refused"
        );
        return false;
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    let computed = argon
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..blocks])
        .is_ok();
    computed && crate::secret::ct_eq(&out, expected.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_like_the_argon2_crate_and_reuses_memory() {
        let phc = crate::secret::hash_password("pa:ss+w%rd/").expect("hash");
        let v = PasswordVerifier::new(1, 4);
        assert_eq!(v.verify("pa:ss+w%rd/", &phc).await, Ok(true));
        assert_eq!(v.verify("pa:ss+w%rd", &phc).await, Ok(false));
        assert_eq!(v.verify("x", "not a phc string").await, Ok(false));
        // A hash made with other parameters (smaller m) still verifies in the same worker.
        let small = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(1024, 1, 1, None).expect("params"),
        );
        let salt =
            argon2::password_hash::SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let phc2 = argon2::PasswordHasher::hash_password(&small, b"other", &salt)
            .expect("hash")
            .to_string();
        assert_eq!(v.verify("other", &phc2).await, Ok(true));
        assert_eq!(v.queued(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_priority_lane_is_served_first_and_has_room_when_the_other_is_full() {
        let phc = crate::secret::hash_password("secret").expect("hash");
        let v = PasswordVerifier::new(1, 8);
        let mut ordinary = Vec::new();
        for _ in 0..12 {
            let (v, phc) = (v.clone(), phc.clone());
            ordinary.push(tokio::spawn(async move { v.verify("wrong", &phc).await }));
        }
        // Let them queue.
        while v.queued() < 8 {
            tokio::task::yield_now().await;
        }
        let before = v.completed();
        assert_eq!(v.verify_in(Lane::Priority, "secret", &phc).await, Ok(true));
        // At most the one that was running, and this one, finished meanwhile.
        assert!(v.completed() - before <= 2, "served ahead of the queue");
        for o in ordinary {
            let _ = o.await;
        }
    }

    #[test]
    fn the_ordinary_lane_gets_every_fourth_turn() {
        let job = |tag: u8| Job {
            password: vec![tag],
            phc: String::new(),
            reply: None,
        };
        let mut q = Queues::default();
        for _ in 0..8 {
            q.priority.push_back(job(b'p'));
            q.ordinary.push_back(job(b'o'));
        }
        let order: Vec<u8> = (0..8)
            .filter_map(|_| q.next())
            .map(|j| j.password[0])
            .collect();
        assert_eq!(order, b"pppopppo".to_vec());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let phc = crate::secret::hash_password("secret").expect("hash");
        let v = PasswordVerifier::new(1, 1);
        // One running, one waiting: the rest must be refused, not queued.
        let mut pending = Vec::new();
        for _ in 0..8 {
            let v = v.clone();
            let phc = phc.clone();
            pending.push(tokio::spawn(async move { v.verify("wrong", &phc).await }));
        }
        let mut busy = 0;
        for p in pending {
            if p.await.expect("task") == Err(Busy) {
                busy += 1;
            }
        }
        assert!(busy >= 5, "only {busy} of 8 were refused");
    }
}
