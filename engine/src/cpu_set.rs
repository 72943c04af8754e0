//! Which CPUs the executors are pinned to: `--cpus LIST` (`2,3`, `4-7`, `0,2-3`), else the CPUs
//! of this process's own affinity mask (so `taskset -c 1 engine run …` and a container's cpuset
//! are obeyed, and two engines given different masks never share a CPU).

/// Parses a Linux CPU list (`0`, `2,3`, `4-7`, `0,2-3`): sorted, without duplicates.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let bad = |why: String| format!("invalid CPU list {text:?}: {why} (e.g. 2,3 or 4-7)");
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let number = |s: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("{s:?} is not a CPU number")))
        };
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (number(from)?, number(to)?);
                if from > to {
                    return Err(bad(format!("range {part:?} runs backwards")));
                }
                if to - from >= 4096 {
                    return Err(bad(format!("range {part:?} is too long")));
                }
                cpus.extend(from..=to);
            }
            None => cpus.push(number(part)?),
        }
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// The CPUs this process may run on (its affinity mask), in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    let mut cpus: Vec<usize> = core_affinity::get_core_ids()
        .map(|ids| ids.into_iter().map(|c| c.id).collect())
        .unwrap_or_default();
    cpus.sort_unstable();
    cpus
}

/// The CPUs the `cores` executors are pinned to, one each. `cores` 0 means one per CPU chosen.
/// `requested` (`--cpus`) must lie inside `allowed`; more cores than CPUs is an error rather than
/// two executors spinning on one CPU.
pub fn choose_cpus(
    requested: Option<&[usize]>,
    allowed: &[usize],
    cores: usize,
    share_cpus: bool,
) -> Result<Vec<usize>, String> {
    let pool: Vec<usize> = match requested {
        Some(list) => {
            check_within("--cpus", list, allowed)?;
            list.to_vec()
        }
        // An unreadable mask (not Linux): one executor on CPU 0, as before.
        None if allowed.is_empty() => vec![0],
        None => allowed.to_vec(),
    };
    if cores == 0 {
        return Ok(pool);
    }
    if cores > pool.len() && share_cpus {
        return Ok((0..cores).map(|i| pool[i % pool.len()]).collect());
    }
    if cores > pool.len() {
        let from = if requested.is_some() {
            "--cpus".to_string()
        } else {
            format!("this process's affinity mask ({})", list_text(allowed))
        };
        return Err(format!(
            "--cores {cores} asks for more executors than CPUs: {from} allows {}; lower --cores, widen --cpus / the affinity mask (taskset, the container's cpuset), or pass --share-cpus",
            pool.len()
        ));
    }
    Ok(pool[..cores].to_vec())
}

/// The CPUs of the WATCH lane: `requested` (`--watch-cpus`, inside `allowed`); else the CPUs of
/// `pool` (`--cpus`, else `allowed`) that no core uses, so that the timed cores do none of the
/// WATCHes' work; else (every CPU has a core) the cores' own CPUs.
pub fn choose_watch_cpus(
    requested: Option<&[usize]>,
    allowed: &[usize],
    pool: &[usize],
    core_cpus: &[usize],
) -> Result<Vec<usize>, String> {
    if let Some(list) = requested {
        check_within("--watch-cpus", list, allowed)?;
        return Ok(list.to_vec());
    }
    let mut spare: Vec<usize> = pool
        .iter()
        .copied()
        .filter(|c| !core_cpus.contains(c))
        .collect();
    if spare.is_empty() {
        spare = core_cpus.to_vec();
    }
    spare.sort_unstable();
    spare.dedup();
    Ok(spare)
}

/// `list` (given as `flag`) names at least one CPU, and only CPUs of `allowed` (when known).
fn check_within(flag: &str, list: &[usize], allowed: &[usize]) -> Result<(), String> {
    if list.is_empty() {
        return Err(format!("{flag} names no CPU"));
    }
    if allowed.is_empty() {
        return Ok(());
    }
    match list.iter().find(|c| !allowed.contains(c)) {
        Some(outside) => Err(format!(
            "{flag} names CPU {outside}, which this process may not use (allowed: {})",
            list_text(allowed)
        )),
        None => Ok(()),
    }
}

/// `0,1,3`, or `unknown` when the affinity mask could not be read.
fn list_text(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        return "unknown".to_string();
    }
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("2,3"), Ok(vec![2, 3]));
        assert_eq!(parse_cpu_list("4-7"), Ok(vec![4, 5, 6, 7]));
        assert_eq!(parse_cpu_list("3, 0-1,1"), Ok(vec![0, 1, 3]));
        for bad in ["", "a", "3-1", "1-", "-1", "1,,2"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn choosing() {
        assert_eq!(choose_cpus(None, &[2, 3], 0, false), Ok(vec![2, 3]));
        assert_eq!(choose_cpus(None, &[2, 3], 1, false), Ok(vec![2]));
        assert_eq!(choose_cpus(Some(&[3]), &[2, 3], 0, false), Ok(vec![3]));
        let err = choose_cpus(None, &[0, 1], 5, false).unwrap_err();
        assert!(err.contains("--cores 5") && err.contains("0,1"), "{err}");
        let err = choose_cpus(Some(&[4]), &[0, 1], 0, false).unwrap_err();
        assert!(err.contains("CPU 4"), "{err}");
        assert!(choose_cpus(Some(&[0]), &[0, 1], 2, false).is_err());
        assert_eq!(choose_cpus(Some(&[0]), &[0, 1], 2, true), Ok(vec![0, 0]));
    }

    #[test]
    fn watch_lane_placement() {
        // The CPUs of the pool no core uses; with none left, the cores' own.
        assert_eq!(
            choose_watch_cpus(None, &[3, 0, 1, 2], &[3, 0, 1, 2], &[1]),
            Ok(vec![0, 2, 3])
        );
        assert_eq!(
            choose_watch_cpus(None, &[0, 1, 2, 3], &[1, 2], &[1]),
            Ok(vec![2])
        );
        assert_eq!(
            choose_watch_cpus(None, &[0, 1, 2], &[1, 2], &[2, 1, 2]),
            Ok(vec![1, 2])
        );
        assert_eq!(
            choose_watch_cpus(Some(&[0]), &[0, 1, 2], &[1, 2], &[1, 2]),
            Ok(vec![0])
        );
        assert!(choose_watch_cpus(Some(&[]), &[0, 1], &[0, 1], &[1]).is_err());
        let err = choose_watch_cpus(Some(&[5]), &[0, 1], &[0, 1], &[1]).unwrap_err();
        assert!(
            err.contains("--watch-cpus names CPU 5") && err.contains("0,1"),
            "{err}"
        );
    }
}
