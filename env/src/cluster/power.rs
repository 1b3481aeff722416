//! Power: the draw of a server (see [`PowerModel`]) and powering idle servers down.

use super::ClusterEnv;
use super::config::PowerModel;
use super::state::{EventKind, ServerState};

impl ClusterEnv {
    /// Arms the idle timeout of server `n` if it is idle, up and has a power model.
    pub(super) fn arm_power_down(&mut self, n: usize) {
        let s = &self.servers[n];
        let has_power = self.config.server_types[s.type_index].power.is_some();
        if let Some(timeout_s) = self.config.idle_timeout_s
            && has_power
            && s.up
            && !s.off
            && s.num_running == 0
        {
            let at_s = self.now_s + timeout_s;
            self.servers[n].power_down_at_s = at_s;
            self.events
                .push(at_s, EventKind::PowerDown { server: n as u32 });
        }
    }
}

pub(super) const JOULES_PER_KWH: f64 = 3.6e6;

/// Power draw of a server now (see [`PowerModel`]).
pub(super) fn power_draw(s: &ServerState, model: Option<PowerModel>, num_resources: usize) -> f64 {
    let Some(m) = model else { return 0.0 };
    if !s.up || s.off {
        return 0.0;
    }
    let dominant = (0..num_resources)
        .filter(|&r| s.capacity[r] > 0)
        .map(|r| f64::from(s.capacity[r] - s.free[r]) / f64::from(s.capacity[r]))
        .fold(0.0, f64::max);
    m.idle_w + (m.peak_w - m.idle_w) * dominant
}
