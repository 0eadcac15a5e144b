//! The process tree under a peer's main process, from `/proc`: xrdp-sesman starts each session
//! (Xorg, the window manager, xrdp-chansrv) under a per-session child, and a clean stop ends
//! those before sesman itself.

use std::collections::HashMap;

/// One process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// The command line, one entry per argument.
    pub args: Vec<String>,
}

impl Process {
    /// The file name of the program (`Xorg` for `/usr/lib/xorg/Xorg`).
    pub fn program(&self) -> &str {
        self.args
            .first()
            .map(|a| a.rsplit('/').next().unwrap_or(a))
            .unwrap_or("")
    }
}

/// Every live process now (zombies, and those that vanish while being read, are left out).
pub(super) fn all() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(read)
        .collect()
}

fn read(pid: u32) -> Option<Process> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    let ppid = fields.next()?.parse().ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Process { pid, ppid, args })
}

/// The processes below `root` in `processes` (children, grandchildren, ...), parents first.
pub(super) fn descendants(processes: &[Process], root: u32) -> Vec<Process> {
    let mut children: HashMap<u32, Vec<&Process>> = HashMap::new();
    for p in processes {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut out = Vec::new();
    let mut queue = vec![root];
    while let Some(pid) = queue.pop() {
        for child in children.get(&pid).into_iter().flatten() {
            if child.pid != root && !out.iter().any(|p: &Process| p.pid == child.pid) {
                out.push((*child).clone());
                queue.push(child.pid);
            }
        }
    }
    out
}

/// Sends `signal` (`TERM`, `KILL`) to `pid`; a process that is already gone is not an error.
pub(super) fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .args(["-s", signal, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, ppid: u32, program: &str) -> Process {
        Process {
            pid,
            ppid,
            args: vec![program.to_owned(), ":60".to_owned()],
        }
    }

    #[test]
    fn finds_every_generation_below_the_root_only() {
        let tree = [
            p(10, 1, "xrdp-sesman"),
            p(11, 10, "xrdp-sesman"),
            p(12, 11, "/usr/lib/xorg/Xorg"),
            p(13, 11, "xterm"),
            p(20, 1, "other"),
        ];
        let below: Vec<u32> = descendants(&tree, 10).iter().map(|p| p.pid).collect();
        assert_eq!(below.len(), 3);
        assert!(below.contains(&11) && below.contains(&12) && below.contains(&13));
        assert_eq!(tree[2].program(), "Xorg");
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let found = all().into_iter().find(|p| p.pid == me).expect("self");
        assert!(!found.args.is_empty());
    }
}
