//! Client-side rate limiting: the run never exceeds `--max-rps` in any
//! 1-second sliding window, measured at the server.
//!
//! Each request reserves a send slot under a lock and sleeps until it. Two
//! rules decide the slot: consecutive slots are at least `1 / rps` apart (so
//! there are no bursts), and the slot is at least 1 s + a margin after the
//! `floor(rps)`-th previous one (so a window never holds more than
//! `floor(rps)` slots, even for a fractional rate, and timer lateness of up to
//! the margin cannot squeeze one more request into a window at the server).
//! Retries reserve a slot like any request. Search requests also go through
//! a second lane capped at Stripe's separate search limit.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);
/// Slack for timers firing late and requests reaching the server unevenly.
const WINDOW_MARGIN: Duration = Duration::from_millis(25);
/// Stripe limits the Search API separately, to 20 requests per second.
pub const SEARCH_MAX_RPS: f64 = 20.0;
/// Rates are clamped into this range (a rate of 0 would never send).
const MIN_RPS: f64 = 0.01;
const MAX_RPS: f64 = 10_000.0;

/// Which limits a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    General,
    /// `/v1/*/search`: counts against the general limit and the search limit.
    Search,
}

#[derive(Debug)]
struct Schedule {
    interval: Duration,
    per_window: usize,
    next: Option<Instant>,
    /// The last `per_window` reserved slots, oldest first.
    recent: VecDeque<Instant>,
}

impl Schedule {
    fn new(rps: f64) -> Schedule {
        let rps = if rps.is_nan() {
            MIN_RPS
        } else {
            rps.clamp(MIN_RPS, MAX_RPS)
        };
        // Within [MIN_RPS, MAX_RPS] both conversions are exact enough and cannot overflow.
        let per_window = (rps.floor() as usize).max(1);
        Schedule {
            interval: Duration::from_secs_f64(1.0 / rps),
            per_window,
            next: None,
            recent: VecDeque::with_capacity(per_window),
        }
    }

    fn earliest(&self, now: Instant) -> Instant {
        let mut t = now;
        if let Some(next) = self.next {
            t = t.max(next);
        }
        if self.recent.len() >= self.per_window
            && let Some(&oldest) = self.recent.front()
        {
            t = t.max(oldest + WINDOW + WINDOW_MARGIN);
        }
        t
    }

    fn record(&mut self, slot: Instant) {
        self.next = Some(slot + self.interval);
        self.recent.push_back(slot);
        while self.recent.len() > self.per_window {
            self.recent.pop_front();
        }
    }
}

#[derive(Debug)]
struct Lanes {
    general: Schedule,
    search: Schedule,
}

/// The rate limiter shared by every request of a client.
#[derive(Debug)]
pub struct Pacer {
    lanes: Mutex<Lanes>,
}

impl Pacer {
    pub fn new(max_rps: f64) -> Pacer {
        // `f64::min` ignores a NaN operand.
        let search = max_rps.min(SEARCH_MAX_RPS);
        Pacer {
            lanes: Mutex::new(Lanes {
                general: Schedule::new(max_rps),
                search: Schedule::new(search),
            }),
        }
    }

    /// Reserve the next send slot and return it, without waiting.
    pub fn reserve(&self, lane: Lane) -> Instant {
        // The lock guards plain data and is never held across an await, so a
        // poisoned lock still holds a consistent schedule.
        let mut lanes = self.lanes.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let mut slot = lanes.general.earliest(now);
        if lane == Lane::Search {
            slot = slot.max(lanes.search.earliest(now));
            lanes.search.record(slot);
        }
        lanes.general.record(slot);
        slot
    }

    /// Wait for this request's turn. A caller that is dropped while waiting
    /// forfeits its slot, which only makes the pace slower.
    pub async fn wait(&self, lane: Lane) {
        let slot = self.reserve(lane);
        tokio::time::sleep_until(slot).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The largest number of times within any half-open window of `window`.
    fn max_in_window(times: &[Instant], window: Duration) -> usize {
        let mut sorted = times.to_vec();
        sorted.sort();
        let mut best = 0;
        let mut start = 0;
        for (end, t) in sorted.iter().enumerate() {
            while t.duration_since(sorted[start]) >= window {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }

    #[tokio::test(start_paused = true)]
    async fn fifty_requests_at_100_rps_take_half_a_second() {
        let pacer = Pacer::new(100.0);
        let start = Instant::now();
        for _ in 0..50 {
            pacer.wait(Lane::General).await;
        }
        let spent = Instant::now() - start;
        assert!(spent >= Duration::from_millis(490), "{spent:?}");
        assert!(spent < Duration::from_millis(520), "{spent:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_never_burst() {
        let pacer = std::sync::Arc::new(Pacer::new(20.0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..100 {
            let pacer = pacer.clone();
            tasks.spawn(async move {
                pacer.wait(Lane::General).await;
                Instant::now()
            });
        }
        let mut times = Vec::new();
        while let Some(t) = tasks.join_next().await {
            times.push(t.expect("task"));
        }
        assert_eq!(times.len(), 100);
        assert!(max_in_window(&times, WINDOW) <= 20);
        assert_eq!(max_in_window(&times, Duration::from_millis(50)), 1);
    }

    #[test]
    fn sliding_window_holds_for_fractional_rates() {
        for rps in [0.5, 1.0, 2.5, 3.0, 7.9, 20.0, 80.0] {
            let pacer = Pacer::new(rps);
            let times: Vec<Instant> = (0..300).map(|_| pacer.reserve(Lane::General)).collect();
            let limit = (rps.floor() as usize).max(1);
            // The margin makes this hold even for windows slightly over 1 s.
            assert!(
                max_in_window(&times, WINDOW + WINDOW_MARGIN) <= limit,
                "rps {rps}"
            );
            let spacing = times
                .windows(2)
                .map(|w| w[1] - w[0])
                .min()
                .unwrap_or_default();
            assert!(spacing >= Duration::from_secs_f64(1.0 / rps) - Duration::from_micros(1));
        }
    }

    #[test]
    fn search_lane_is_capped_separately() {
        let pacer = Pacer::new(80.0);
        let mut search = Vec::new();
        let mut all = Vec::new();
        for i in 0..200 {
            let lane = if i % 2 == 0 {
                Lane::Search
            } else {
                Lane::General
            };
            let t = pacer.reserve(lane);
            all.push(t);
            if lane == Lane::Search {
                search.push(t);
            }
        }
        assert!(max_in_window(&search, WINDOW) <= 20);
        assert!(max_in_window(&all, WINDOW) <= 80);
    }

    #[tokio::test(start_paused = true)]
    async fn the_request_after_a_full_window_waits_for_it_to_pass() {
        // 5 per second: 5 sends 200 ms apart, then the 6th is held until the
        // first has left the window (1 s + margin), not sent at 1.0 s.
        let pacer = Pacer::new(5.0);
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..11 {
            pacer.wait(Lane::General).await;
            sent.push(Instant::now() - start);
        }
        let ms = |m| Duration::from_millis(m);
        assert_eq!(
            sent,
            [
                ms(0),
                ms(200),
                ms(400),
                ms(600),
                ms(800),
                ms(1025),
                ms(1225),
                ms(1425),
                ms(1625),
                ms(1825),
                ms(2050)
            ]
        );
        let times: Vec<Instant> = sent.iter().map(|d| start + *d).collect();
        assert_eq!(max_in_window(&times, WINDOW + WINDOW_MARGIN), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn search_requests_wait_for_their_own_limit() {
        // 80/s overall, but search is capped at 20/s: 21 searches cannot all
        // go out within a second, while 21 general requests do.
        let pacer = Pacer::new(80.0);
        let start = Instant::now();
        for _ in 0..21 {
            pacer.wait(Lane::General).await;
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(250));

        let pacer = Pacer::new(80.0);
        let start = Instant::now();
        for _ in 0..20 {
            pacer.wait(Lane::Search).await;
        }
        assert_eq!(Instant::now() - start, Duration::from_millis(950));
        pacer.wait(Lane::Search).await;
        assert_eq!(
            Instant::now() - start,
            WINDOW + WINDOW_MARGIN,
            "the 21st search waits for the first to leave the window"
        );
    }

    #[test]
    fn nonsense_rates_are_clamped() {
        let gap = |pacer: &Pacer, lane| {
            let first = pacer.reserve(lane);
            pacer.reserve(lane) - first
        };
        // 0, negative and NaN become the slowest rate (0.01/s: one per 100 s),
        // never "no limit" and never a rate that cannot send at all.
        for rps in [0.0, -3.0, f64::NAN] {
            let pacer = Pacer::new(rps);
            assert_eq!(
                gap(&pacer, Lane::General),
                Duration::from_secs(100),
                "{rps}"
            );
        }
        // Huge or infinite rates become 10 000/s; search keeps its own 20/s.
        for rps in [f64::INFINITY, 1e12] {
            let pacer = Pacer::new(rps);
            assert_eq!(
                gap(&pacer, Lane::General),
                Duration::from_micros(100),
                "{rps}"
            );
            let pacer = Pacer::new(rps);
            assert_eq!(
                gap(&pacer, Lane::Search),
                Duration::from_millis(50),
                "{rps}"
            );
        }
    }
}
