"""Operations across domains: named jobs, the run-failure alert and the automation-condition sensor."""
