-- Grain: one row per published cell of a national reference table (dataset,
-- indicator, unit, geo, frequency, period), e.g. Eurostat crim_pris_cap:
-- value as published (null = not available, Eurostat `:`) with the
-- publisher's own status flag. Nothing is recomputed or suppressed here: these
-- are another publisher's published figures.
select
    dataset,
    indicator,
    unit,
    geo,
    frequency,
    period,
    value,
    flag
from {{ ref('stg_national_reference__values') }}
order by dataset, indicator, unit, geo, frequency, period
