//! The monthly usage period: the calendar month in UTC. Every organization's period starts
//! at 00:00 UTC on the first day of a month and ends when the next month starts, so quotas
//! reset for everyone at once and the reset date is easy to state.

use time::{Date, Month, OffsetDateTime, Time};

/// One usage period: `start` inclusive, `end` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: OffsetDateTime,
    pub end: OffsetDateTime,
}

impl Period {
    /// The calendar month (UTC) that contains `now`.
    pub fn containing(now: OffsetDateTime) -> Self {
        let now = now.to_offset(time::UtcOffset::UTC);
        let first = |year: i32, month: Month| {
            Date::from_calendar_date(year, month, 1)
                .expect("the first of a month is a valid date")
                .with_time(Time::MIDNIGHT)
                .assume_utc()
        };
        let start = first(now.year(), now.month());
        let end = match now.month() {
            Month::December => first(now.year() + 1, Month::January),
            month => first(now.year(), month.next()),
        };
        Self { start, end }
    }

    /// Every day of the period, first to last.
    pub fn days(&self) -> impl Iterator<Item = Date> + '_ {
        let last = self.end.date().previous_day();
        std::iter::successors(Some(self.start.date()), move |day| {
            day.next_day().filter(|next| Some(*next) <= last)
        })
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_period_is_the_calendar_month_in_utc() {
        let period = Period::containing(datetime!(2026-11-26 10:30 UTC));
        assert_eq!(period.start, datetime!(2026-11-01 0:00 UTC));
        assert_eq!(period.end, datetime!(2026-12-01 0:00 UTC));
        assert_eq!(period.days().count(), 30);
    }

    #[test]
    fn the_period_rolls_over_at_midnight_utc_on_the_first() {
        let last_moment = Period::containing(datetime!(2026-11-30 23:59:59.999 UTC));
        let next = Period::containing(datetime!(2026-12-01 0:00 UTC));
        assert_eq!(last_moment.end, next.start);
        assert_ne!(last_moment, next);
        // Late on the 30th in New York is already December in UTC.
        let new_york = Period::containing(datetime!(2026-11-30 20:00 -5:00));
        assert_eq!(new_york, next);
    }

    #[test]
    fn december_rolls_into_the_next_year_and_february_knows_leap_years() {
        let december = Period::containing(datetime!(2026-12-31 12:00 UTC));
        assert_eq!(december.end, datetime!(2027-01-01 0:00 UTC));
        assert_eq!(
            Period::containing(datetime!(2028-02-10 0:00 UTC))
                .days()
                .count(),
            29
        );
        assert_eq!(
            Period::containing(datetime!(2027-02-10 0:00 UTC))
                .days()
                .count(),
            28
        );
    }
}
