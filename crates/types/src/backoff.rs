use std::time::Duration;

/// Exponential back-off: `first`, doubled after each step, never above `max`. The one schedule
/// behind Neutron retries, the ACTIVE wait and the start-up wait for Neutron.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff {
            next: first.min(max),
            max,
        }
    }

    /// The delay before attempt `n + 1` (0-based) without keeping state.
    pub fn nth(first: Duration, max: Duration, n: u32) -> Duration {
        first.saturating_mul(2u32.saturating_pow(n)).min(max)
    }

    /// The next delay; advances the schedule.
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000));
        let got: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(
            got,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(Backoff::nth(ms(200), ms(2000), 0), ms(200));
        assert_eq!(Backoff::nth(ms(200), ms(2000), 3), ms(1600));
        assert_eq!(Backoff::nth(ms(200), ms(2000), 40), ms(2000));
    }
}
