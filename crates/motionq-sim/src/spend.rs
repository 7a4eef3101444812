//! Net spend of one key in sliding (scaled) hour and day windows and in total, in O(1)
//! amortized per operation: creates at benchmark rates must not scan the key's history.

use crate::ledger::SpendWindows;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Charges inside the day window, with running sums for both windows.
#[derive(Debug)]
pub(crate) struct Spend {
    hour: Duration,
    day: Duration,
    /// (when, amount still counted) of charges younger than a day, oldest first.
    entries: VecDeque<(Instant, f64)>,
    /// Sequence number of `entries[0]`.
    base: u64,
    /// First sequence number still inside the hour window.
    hour_cursor: u64,
    /// Unsettled charges by task (a refund must find its charge).
    open: HashMap<String, u64>,
    hour_sum: f64,
    day_sum: f64,
    total: f64,
}

impl Spend {
    pub(crate) fn new(hour: Duration, day: Duration) -> Spend {
        Spend {
            hour,
            day: day.max(hour),
            entries: VecDeque::new(),
            base: 0,
            hour_cursor: 0,
            open: HashMap::new(),
            hour_sum: 0.0,
            day_sum: 0.0,
            total: 0.0,
        }
    }

    fn roll(&mut self, now: Instant) {
        let end = self.base + self.entries.len() as u64;
        self.hour_cursor = self.hour_cursor.max(self.base);
        while self.hour_cursor < end {
            let (at, amount) = self.entries[(self.hour_cursor - self.base) as usize];
            if now.saturating_duration_since(at) < self.hour {
                break;
            }
            self.hour_sum -= amount;
            self.hour_cursor += 1;
        }
        while let Some(&(at, amount)) = self.entries.front() {
            if now.saturating_duration_since(at) < self.day {
                break;
            }
            self.day_sum -= amount;
            self.entries.pop_front();
            self.base += 1;
        }
        self.hour_cursor = self.hour_cursor.max(self.base);
    }

    pub(crate) fn charge(&mut self, now: Instant, task: &str, amount: f64) {
        self.roll(now);
        let seq = self.base + self.entries.len() as u64;
        self.entries.push_back((now, amount));
        self.open.insert(task.to_string(), seq);
        self.hour_sum += amount;
        self.day_sum += amount;
        self.total += amount;
    }

    /// The charge is final after giving back `back` (0 when the pre-charge was exact).
    pub(crate) fn settle(&mut self, now: Instant, task: &str, back: f64) {
        self.give_back(now, task, Some(back));
    }

    /// Takes the whole charge of `task` out of every window it is still in.
    pub(crate) fn refund(&mut self, now: Instant, task: &str, amount: f64) {
        self.total -= amount;
        self.give_back(now, task, None);
    }

    /// `Some(x)`: reduce the charge by `x` (and the total); `None`: remove it entirely from the
    /// windows (the caller adjusted the total). Either way the charge is closed.
    fn give_back(&mut self, now: Instant, task: &str, partial: Option<f64>) {
        self.roll(now);
        if let Some(x) = partial {
            self.total -= x;
        }
        if let Some(seq) = self.open.remove(task) {
            if seq >= self.base {
                let entry = &mut self.entries[(seq - self.base) as usize];
                let removed = match partial {
                    Some(x) => x.min(entry.1),
                    None => entry.1,
                };
                entry.1 -= removed;
                self.day_sum -= removed;
                if seq >= self.hour_cursor {
                    self.hour_sum -= removed;
                }
            }
        }
    }

    pub(crate) fn windows(&mut self, now: Instant) -> SpendWindows {
        self.roll(now);
        let r = |x: f64| crate::vendors::round6(x.max(0.0));
        SpendWindows {
            last_hour: r(self.hour_sum),
            last_day: r(self.day_sum),
            total: r(self.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_roll_and_refunds_leave_every_window() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = Spend::new(ms(100), ms(1000));
        s.charge(t0, "a", 10.0);
        s.charge(t0 + ms(50), "b", 5.0);
        let w = s.windows(t0 + ms(60));
        assert_eq!((w.last_hour, w.last_day, w.total), (15.0, 15.0, 15.0));
        let w = s.windows(t0 + ms(120));
        assert_eq!((w.last_hour, w.last_day, w.total), (5.0, 15.0, 15.0));
        s.refund(t0 + ms(130), "a", 10.0);
        let w = s.windows(t0 + ms(130));
        assert_eq!((w.last_hour, w.last_day, w.total), (5.0, 5.0, 5.0));
        s.refund(t0 + ms(140), "b", 5.0);
        s.charge(t0 + ms(2000), "c", 1.0);
        let w = s.windows(t0 + ms(2000));
        assert_eq!((w.last_hour, w.last_day, w.total), (1.0, 1.0, 1.0));
        s.settle(t0 + ms(2000), "c", 0.25);
        let w = s.windows(t0 + ms(2000));
        assert_eq!((w.last_hour, w.last_day, w.total), (0.75, 0.75, 0.75));
    }
}
